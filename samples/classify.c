/* vkformer-classify: image classification with a Hugging Face ViT checkpoint,
 * text classification with a BERT-style sequence classifier, or audio
 * classification with a wav2vec 2.0 / HuBERT one, as HF's image-, text- and
 * audio-classification pipelines give them.
 * Uses only the public API (include/vkformer.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tool.h"
#include "vkformer.h"

const char *tool_name = "vkformer-classify";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkformer-classify [options] [IMAGE... | TEXT... | AUDIO...]   ('-': a file on standard input)\n"
            "       vkformer-classify --model DIR --labels \"a,b,c\" [--multi-label] TEXT...\n"
            "Classifies images with a Hugging Face image classifier (ViT, DeiT), or texts with\n"
            "a text classifier (BertForSequenceClassification, DistilBERT, RoBERTa, ...), or\n"
            "audio files with an audio classifier (Wav2Vec2ForSequenceClassification,\n"
            "HubertForSequenceClassification: WAV, FLAC, Ogg, resampled to the model's rate).\n"
            "With --labels: zero-shot, as HF's zero-shot-classification pipeline: an NLI\n"
            "model (...ForSequenceClassification trained on MNLI) scores each label as the\n"
            "hypothesis of each text.\n"
            "With no argument: the bundled cats photo with the bundled ViT-Tiny; for a text\n"
            "model, one text per line of standard input.\n"
            "\n"
            "  -k, --top K            classes to print per input (default 5; zero-shot: all)\n"
            "  -f, --file F           text models: one text per line of F ('-': standard input),\n"
            "                         read and classified a batch at a time\n"
            "      --pair TEXT        text models: classify each text as a pair with TEXT\n"
            "      --input-tensor FILE  image models: raw little-endian float32 N x C x H x W,\n"
            "                         already preprocessed, instead of images (N from the size)\n"
            "      --dump-logits FILE write the raw float32 N x labels logits\n"
            "      --profile          print per-node GPU times\n"
            "Zero-shot text classification:\n");
    tool_labels_usage(f, VKF_ZERO_SHOT_TEXT_TEMPLATE);
    fprintf(f, "      --multi-label      labels independent: each scored entailment against\n"
               "                         contradiction (default: a softmax over the labels)\n");
    tool_model_usage(f);
    fprintf(f, "Output: per input, the K best labels with their scores; --json / --jsonl as HF's\n"
               "pipeline: [{\"label\": ..., \"score\": ...}, ...] per input; zero-shot:\n"
               "{\"sequence\": ..., \"labels\": [...], \"scores\": [...]} per text.\n"
               "Images: JPEG, PNG (decoded as PIL does), BMP, GIF (first frame); up to 100\n"
               "megapixels.\n"
               "Exit status: 0 success, 1 a file or the device failed, 2 bad usage.\n");
}

/* Reads a raw float32 file into a malloc'd buffer. */
static int read_floats(const char *path, float **data, size_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) return tool_fail("%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return tool_fail("%s: not a regular file", path);
    }
    size_t bytes = (size_t)st.st_size;
    if (bytes == 0 || bytes % 4) {
        fclose(f);
        return tool_fail("%s: %zu bytes is not a whole number of float32 values", path, bytes);
    }
    *data = malloc(bytes);
    if (!*data || fread(*data, 1, bytes, f) != bytes) {
        fclose(f);
        free(*data);
        *data = NULL;
        return tool_fail("%s: read failed", path);
    }
    fclose(f);
    *count = bytes / 4;
    return TOOL_OK;
}

/* One input's results: HF's list of {label, score}, or text lines. */
static void print_scores(tool_model_opts *o, const char *name, size_t name_len, const vkf_class_score *s, uint32_t k,
                         int with_index)
{
    if (o->out.format != TOOL_TEXT) {
        cJSON *list = cJSON_CreateArray();
        for (uint32_t j = 0; j < k; j++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "label", s[j].label);
            cJSON_AddNumberToObject(e, "score", s[j].prob);
            cJSON_AddItemToArray(list, e);
        }
        tool_emit(&o->out, list);
        return;
    }
    tool_results_begin();
    printf("%.*s:\n", (int)name_len, name);
    for (uint32_t j = 0; j < k; j++) {
        if (with_index) printf("  %5.3f  %4u  %s\n", s[j].prob, s[j].index, s[j].label);
        else printf("  %5.3f  %s\n", s[j].prob, s[j].label);
    }
    fflush(stdout);
}

/* Logits in class order, appended to the dump file. */
static int dump_rows(FILE *f, const char *path, const vkf_class_score *s, uint32_t rows, uint32_t labels)
{
    float *row = malloc((size_t)labels * sizeof *row);
    if (!row) return tool_fail("out of memory");
    int rc = TOOL_OK;
    for (uint32_t i = 0; i < rows && rc == TOOL_OK; i++) {
        for (uint32_t j = 0; j < labels; j++) row[s[(size_t)i * labels + j].index] = s[(size_t)i * labels + j].logit;
        if (fwrite(row, sizeof *row, labels, f) != labels) rc = tool_fail("%s: %s", path, strerror(errno));
    }
    free(row);
    return rc;
}

/* Text classifiers: TEXT arguments, or one text per line of --file / standard input, a batch at a time. */
static int classify_texts(tool_model_opts *o, vkf_context *ctx, vkf_model *model, const vkf_model_info *info, char **args,
                          int n_args, const char *file, const char *pair, unsigned top_k, FILE *dump, const char *dump_path)
{
    uint32_t L = info->num_labels, k = top_k < L ? top_k : L, per = o->batch ? o->batch : 32;
    tool_input in;
    tool_texts texts = {0};
    int rc = tool_input_open(&in, args, (size_t)n_args, file, 1);
    const char **pairs = malloc(per * sizeof *pairs);
    vkf_class_score *sc = calloc((size_t)per * L, sizeof *sc);
    if (rc == TOOL_OK && (!pairs || !sc)) rc = tool_fail("out of memory");
    for (uint32_t i = 0; pairs && i < per; i++) pairs[i] = pair;
    size_t done = 0;
    double t_run = 0;
    while (rc == TOOL_OK) {
        rc = tool_input_next(&in, &texts, per);
        uint32_t n = (uint32_t)texts.count;
        if (rc != TOOL_OK || !n) break;
        tool_set_batch(&texts);
        double t0 = tool_now();
        /* every label, so that the dump has all the logits */
        if (vkf_classify_texts(model, (const char *const *)texts.s, pair ? pairs : NULL, n, sc, L) != VKF_OK) rc = tool_fail_lib(ctx);
        t_run += tool_now() - t0;
        tool_set_batch(NULL);
        if (rc == TOOL_OK && dump) rc = dump_rows(dump, dump_path, sc, n, L);
        for (uint32_t i = 0; i < n && rc == TOOL_OK; i++)
            print_scores(o, texts.s[i], texts.n[i] > 100 ? 100 : texts.n[i], sc + (size_t)i * L, k, 0);
        done += n;
        tool_progress_count(o->quiet, "classified", done, "texts");
    }
    if (rc == TOOL_OK && !done) rc = tool_usage_error("no texts to classify");
    if (rc == TOOL_OK) tool_timing(o, t_run, done, "text");
    free(sc);
    free(pairs);
    tool_texts_free(&texts);
    tool_input_close(&in);
    return rc;
}

/* Zero-shot: each text against the labels (one batched run per text), HF's {sequence, labels, scores}. */
static int zero_shot_texts(tool_model_opts *o, vkf_context *ctx, vkf_model *model, char **args, int n_args, const char *file,
                           const tool_texts *labels, const char *tmpl, int multi, unsigned top_k)
{
    uint32_t nl = (uint32_t)labels->count, k = top_k && top_k < nl ? top_k : nl;
    tool_input in;
    tool_texts texts = {0};
    int rc = tool_input_open(&in, args, (size_t)n_args, file, 1);
    vkf_class_score *sc = calloc(nl, sizeof *sc);
    if (rc == TOOL_OK && !sc) rc = tool_fail("out of memory");
    size_t done = 0;
    double t_run = 0;
    while (rc == TOOL_OK) {
        rc = tool_input_next(&in, &texts, o->batch ? o->batch : 32);
        if (rc != TOOL_OK || !texts.count) break;
        for (size_t i = 0; i < texts.count && rc == TOOL_OK; i++) {
            double t0 = tool_now();
            if (vkf_zero_shot_text(model, texts.s[i], (const char *const *)labels->s, nl, tmpl, multi, sc) != VKF_OK) {
                char name[64];
                rc = tool_fail("%s: %s", tool_text_name(&texts, i, name, sizeof name), vkf_last_error(ctx));
                break;
            }
            t_run += tool_now() - t0;
            if (o->out.format != TOOL_TEXT) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "sequence", texts.s[i]);
                cJSON *ls = cJSON_AddArrayToObject(e, "labels"), *ss = cJSON_AddArrayToObject(e, "scores");
                for (uint32_t j = 0; j < k; j++) {
                    cJSON_AddItemToArray(ls, cJSON_CreateString(sc[j].label));
                    cJSON_AddItemToArray(ss, cJSON_CreateNumber(sc[j].prob));
                }
                tool_emit(&o->out, e);
            } else {
                print_scores(o, texts.s[i], texts.n[i] > 100 ? 100 : texts.n[i], sc, k, 0);
            }
        }
        done += texts.count;
        tool_progress_count(o->quiet, "classified", done, "texts");
    }
    if (rc == TOOL_OK && !done) rc = tool_usage_error("no texts to classify");
    if (rc == TOOL_OK) tool_timing(o, t_run, done, "text");
    free(sc);
    tool_texts_free(&texts);
    tool_input_close(&in);
    return rc;
}

/* Image classifiers: images (or a raw tensor) a batch at a time. */
static int classify_images(tool_model_opts *o, vkf_context *ctx, vkf_model *model, const vkf_model_info *info,
                           const char **images, uint32_t n_images, const char *input_tensor, unsigned top_k, FILE *dump,
                           const char *dump_path)
{
    uint32_t L = info->num_labels, k = top_k < L ? top_k : L, per = o->batch ? o->batch : 32;
    size_t px = (size_t)info->channels * info->image_height * info->image_width;
    float *tensor = NULL, *pixels = NULL, *logits = NULL;
    vkf_class_score *sc = NULL;
    uint32_t n = n_images;
    int rc = TOOL_OK;
    if (input_tensor) {
        size_t count = 0;
        rc = read_floats(input_tensor, &tensor, &count);
        if (rc == TOOL_OK && count % px)
            rc = tool_fail("%s: %zu floats is not a whole number of %ux%ux%u images", input_tensor, count, info->channels,
                           info->image_height, info->image_width);
        n = (uint32_t)(count / px);
    }
    per = n < per ? n : per;
    if (rc == TOOL_OK) {
        pixels = input_tensor ? NULL : malloc(px * per * sizeof(float));
        logits = malloc((size_t)per * L * sizeof(float));
        sc = calloc((size_t)per * L, sizeof *sc);
        if ((!input_tensor && !pixels) || !logits || !sc) rc = tool_fail("out of memory");
    }
    /* recording the command buffers counts as loading */
    double t0 = tool_now();
    if (rc == TOOL_OK && (vkf_model_prepare(model, per, 0) != VKF_OK || (n % per && vkf_model_prepare(model, n % per, 0) != VKF_OK)))
        rc = tool_fail_lib(ctx);
    o->load_s += tool_now() - t0;
    double t_run = 0;
    for (uint32_t first = 0; first < n && rc == TOOL_OK; first += per) {
        uint32_t b = n - first < per ? n - first : per;
        float *batch = input_tensor ? tensor + px * first : pixels;
        for (uint32_t i = 0; i < b && !input_tensor && rc == TOOL_OK; i++) {
            const char *path = images[first + i];
            vkf_status st;
            if (!strcmp(path, "-")) { /* an encoded image on standard input */
                size_t size;
                char *bytes = tool_read_all("-", &size);
                if (!bytes) {
                    rc = TOOL_FAIL;
                    break;
                }
                st = vkf_image_preprocess_memory(model, bytes, size, pixels + px * i);
                free(bytes);
            } else {
                st = vkf_image_preprocess_file(model, path, pixels + px * i);
            }
            if (st != VKF_OK) rc = strcmp(path, "-") ? tool_fail_lib(ctx) : tool_fail("standard input: %s", vkf_last_error(ctx));
        }
        if (rc != TOOL_OK) break;
        vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {b, info->channels, info->image_height, info->image_width}, .data = batch};
        vkf_tensor out = {.name = "logits", .data = logits, .capacity = (uint64_t)b * L * 4};
        double t1 = tool_now();
        if (vkf_model_run(model, &in, 1, &out, 1) != VKF_OK) {
            rc = tool_fail_lib(ctx);
            break;
        }
        t_run += tool_now() - t1;
        for (uint32_t i = 0; i < b; i++) vkf_top_k(model, logits + (size_t)i * L, sc + (size_t)i * L, L);
        if (dump && fwrite(logits, sizeof(float), (size_t)b * L, dump) != (size_t)b * L) rc = tool_fail("%s: %s", dump_path, strerror(errno));
        for (uint32_t i = 0; i < b && rc == TOOL_OK; i++) {
            char name[32];
            const char *nm = images ? images[first + i] : name;
            if (!images) snprintf(name, sizeof name, "input %u", first + i);
            print_scores(o, nm, strlen(nm), sc + (size_t)i * L, k, 1);
        }
        tool_progress_count(o->quiet, "classified", first + b, "images");
    }
    if (rc == TOOL_OK) tool_timing(o, t_run, n, "image");
    free(tensor), free(pixels), free(logits), free(sc);
    return rc;
}

/* Audio classifiers: each file decoded at the model's rate and run alone, as the pipeline runs it. */
static int classify_audio(tool_model_opts *o, vkf_context *ctx, vkf_model *model, const vkf_model_info *info, char **files, int n,
                          unsigned top_k)
{
    uint32_t L = info->num_labels, k = top_k < L ? top_k : L;
    if (!n) return tool_usage_error("give audio files for an audio classifier ('-': standard input)");
    vkf_class_score *sc = calloc(L, sizeof *sc);
    if (!sc) return tool_fail("out of memory");
    int rc = TOOL_OK;
    double t_run = 0;
    for (int i = 0; i < n && rc == TOOL_OK; i++) {
        const char *name = strcmp(files[i], "-") ? files[i] : "standard input";
        vkf_audio a;
        if ((rc = tool_load_audio(files[i], info->sampling_rate, &a)) != TOOL_OK) break;
        double t0 = tool_now();
        if (vkf_classify_audio(model, a.samples, a.frames, a.rate, sc, k) != VKF_OK) rc = tool_fail("%s: %s", name, vkf_last_error(ctx));
        t_run += tool_now() - t0;
        if (rc == TOOL_OK) print_scores(o, name, strlen(name), sc, k, 1);
        vkf_audio_free(&a);
        tool_progress_count(o->quiet, "classified", (size_t)i + 1, "files");
    }
    if (rc == TOOL_OK) tool_timing(o, t_run, (size_t)n, "file");
    free(sc);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"top", required_argument, 0, 'k'}, {"file", required_argument, 0, 'f'}, {"pair", required_argument, 0, 2000},
        {"input-tensor", required_argument, 0, 2001}, {"dump-logits", required_argument, 0, 2002},
        {"profile", no_argument, 0, 2003}, {"labels", required_argument, 0, 'l'}, {"labels-file", required_argument, 0, 2004},
        {"template", required_argument, 0, 't'}, {"multi-label", no_argument, 0, 2005}, TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    const char *input_tensor = NULL, *dump_path = NULL, *file = NULL, *pair = NULL;
    const char *labels_arg = NULL, *labels_file = NULL, *tmpl = NULL;
    unsigned top_k = 5;
    int profile = 0, multi = 0, top_given = 0, c, rc = TOOL_CONTINUE;
    while (rc == TOOL_CONTINUE && (c = tool_getopt(argc, argv, "k:f:l:t:" TOOL_MODEL_SHORTOPTS, longopts)) != -1) {
        switch (c) {
        case 'k':
            if (!tool_parse_u32(optarg, 1, 100000, &top_k)) rc = tool_usage_error("--top takes a positive number, not '%s'", optarg);
            top_given = 1;
            break;
        case 'l': labels_arg = optarg; break;
        case 2004: labels_file = optarg; break;
        case 't': tmpl = optarg; break;
        case 2005: multi = 1; break;
        case 'f': file = optarg; break;
        case 2000: pair = optarg; break;
        case 2001: input_tensor = optarg; break;
        case 2002: dump_path = optarg; break;
        case 2003: profile = 1, mo.mdesc.profile = 1; break;
        default: rc = tool_model_option(c, optarg, &mo, usage);
        }
    }
    if (rc != TOOL_CONTINUE) return rc;
    char **args = argv + optind;
    int n_args = argc - optind;
    if (input_tensor && n_args) return tool_usage_error("give images or --input-tensor, not both");
    if (input_tensor && (file || pair)) return tool_usage_error("--input-tensor is for image models; --file and --pair for text models");
    if (file && n_args) return tool_usage_error("give texts as arguments or with --file, not both");
    tool_texts labels = {0};
    int zero_shot = labels_arg || labels_file;
    if (!zero_shot && (tmpl || multi)) return tool_usage_error("--template and --multi-label are for zero-shot: give --labels");
    if (zero_shot) {
        if (input_tensor || pair || dump_path) return tool_usage_error("zero-shot (--labels) takes texts: no --input-tensor, --pair or --dump-logits");
        if (!mo.model) return tool_usage_error("zero-shot (--labels) needs --model DIR: an NLI text classifier");
        if (tmpl && !strstr(tmpl, "{}")) return tool_usage_error("the template '%s' has no {} for the label", tmpl);
        if ((rc = tool_labels(labels_arg, labels_file, &labels)) != TOOL_OK) {
            tool_texts_free(&labels);
            return rc;
        }
    }
    char default_model[4096], default_image[4096];
    if (!mo.model) {
        if (!tool_bundled_path(TOOL_DEFAULT_MODEL, default_model, sizeof default_model))
            return tool_fail("the bundled model is not at %s: give --model DIR (or set VKF_MODEL_DIR)", default_model);
        mo.model = default_model;
    }
    /* what it can classify is checked before the weights load */
    mo.task = input_tensor ? "image-classification"
            : (file || pair || zero_shot) ? "text-classification"
                                          : "image-classification,text-classification,audio-classification";
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    rc = tool_open_model(&mo, &ctx, &model);
    vkf_model_info info;
    FILE *dump = NULL;
    if (rc == TOOL_OK) {
        vkf_model_get_info(model, &info);
        tool_model_line(&mo, ctx, &info);
        if (dump_path && !(dump = fopen(dump_path, "wb"))) rc = tool_fail("%s: %s", dump_path, strerror(errno));
    }
    if (rc == TOOL_OK && zero_shot) {
        rc = zero_shot_texts(&mo, ctx, model, args, n_args, file, &labels, tmpl, multi, top_given ? top_k : 0);
    } else if (rc == TOOL_OK && info.sampling_rate) {
        rc = dump_path ? tool_usage_error("--dump-logits is for image and text models")
                       : classify_audio(&mo, ctx, model, &info, args, n_args, top_k);
    } else if (rc == TOOL_OK && !strcmp(info.task, "text-classification")) {
        rc = classify_texts(&mo, ctx, model, &info, args, n_args, file, pair, top_k, dump, dump_path);
    } else if (rc == TOOL_OK) {
        const char *one = default_image;
        if (!input_tensor && !n_args && !tool_bundled_path(TOOL_DEFAULT_IMAGE, default_image, sizeof default_image))
            rc = tool_fail("%s: the bundled image is missing: give an image", default_image);
        if (rc == TOOL_OK)
            rc = classify_images(&mo, ctx, model, &info, input_tensor ? NULL : n_args ? (const char **)args : &one,
                                 input_tensor ? 0 : n_args ? (uint32_t)n_args : 1, input_tensor, top_k, dump, dump_path);
    }
    if (mo.out.format == TOOL_JSON && (rc == TOOL_OK || mo.out.items)) tool_emit_end(&mo.out);
    if (dump && fclose(dump) != 0 && rc == TOOL_OK) rc = tool_fail("%s: %s", dump_path, strerror(errno));
    if (rc == TOOL_OK && profile) {
        char *table;
        if (vkf_model_profile(model, &table) == VKF_OK) {
            fputs(table, stderr);
            vkf_free(table);
        }
    }
    tool_texts_free(&labels);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
