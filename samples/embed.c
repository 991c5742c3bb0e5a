/* vkformer-embed: sentence embeddings (sentence-transformers semantics) with
 * a text encoder, CLIP's text or image embeddings, as vectors, a .npy file
 * or a cosine matrix.
 * Uses only the public API (include/vkformer.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

const char *tool_name = "vkformer-embed";

static void usage(FILE *f)
{
    fprintf(f, "usage: vkformer-embed --model DIR [options] [TEXT... | --file F]\n"
               "       vkformer-embed --model DIR --images IMAGE...\n"
               "Embeds each text (one per line of --file F or of standard input when no TEXT\n"
               "is given, read a batch at a time) as the model's sentence-transformers\n"
               "configuration says: pooling (1_Pooling/config.json, else mean) and normalisation\n"
               "(a Normalize module); with a CLIP model, its text embeddings, or with --images its\n"
               "image embeddings (the arguments are image files; a vision-only CLIP takes images\n"
               "anyway). Prints one vector per line as each batch finishes, or with --similarity\n"
               "the cosine matrix (after the last input).\n"
               "\n"
               "  -i, --images           the arguments are images (CLIP)\n"
               "  -f, --file F           texts, one per line ('-': standard input); empty lines skipped\n"
               "  -o, --output F.npy     write the [inputs, dim] float32 matrix to F.npy\n"
               "  -s, --similarity       print the cosine similarity of every pair of inputs\n"
               "                         (--json: per input, its row of the matrix)\n"
               "      --pooling MODE     mean, cls, max or mean_sqrt (default: the model's)\n"
               "      --normalize yes|no L2-normalise (default: the model's)\n");
    tool_model_usage(f);
    fprintf(f, "Exit status: 0 success, 1 a file, the model or a text failed, 2 bad usage.\n");
}

static int keep(float **all, size_t *cap, size_t have, const float *e, size_t floats)
{
    if (have + floats > *cap) {
        size_t c = *cap ? *cap : 1 << 16;
        while (c < have + floats) c *= 2;
        float *n = realloc(*all, c * sizeof *n);
        if (!n) return tool_fail("out of memory");
        *all = n, *cap = c;
    }
    memcpy(*all + have, e, floats * sizeof *e);
    return TOOL_OK;
}

static void print_vector(tool_model_opts *o, const float *e, uint32_t D)
{
    if (o->out.format != TOOL_TEXT) {
        tool_emit(&o->out, cJSON_CreateFloatArray(e, (int)D));
        return;
    }
    tool_results_begin();
    for (uint32_t k = 0; k < D; k++) printf(k ? " %.6g" : "%.6g", e[k]);
    putchar('\n');
}

/* The cosine matrix of the n vectors: text rows, or per input its row. */
static int print_similarity(tool_model_opts *o, const float *e, size_t n, uint32_t D, char **names, size_t *name_len)
{
    double *row = malloc(n * sizeof *row);
    if (!row) return tool_fail("out of memory");
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            double ab = 0, aa = 0, bb = 0;
            for (uint32_t k = 0; k < D; k++) {
                double a = e[i * D + k], b = e[j * D + k];
                ab += a * b, aa += a * a, bb += b * b;
            }
            row[j] = ab / fmax(sqrt(aa * bb), 1e-12);
        }
        if (o->out.format != TOOL_TEXT) {
            tool_emit(&o->out, cJSON_CreateDoubleArray(row, (int)n));
            continue;
        }
        tool_results_begin();
        for (size_t j = 0; j < n; j++) printf(j ? " %7.4f" : "%7.4f", row[j]);
        printf("   %.*s\n", (int)(name_len[i] > 60 ? 60 : name_len[i]), names[i]);
    }
    free(row);
    return TOOL_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, 0, 'f'}, {"output", required_argument, 0, 'o'}, {"similarity", no_argument, 0, 's'},
        {"images", no_argument, 0, 'i'},
        {"pooling", required_argument, 0, 2000}, {"normalize", required_argument, 0, 2001}, TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    const char *file = NULL, *output = NULL;
    int similarity = 0, images = 0, c, rc = TOOL_CONTINUE;
    vkf_embed_options eo = {0};
    while (rc == TOOL_CONTINUE && (c = tool_getopt(argc, argv, "f:o:si" TOOL_MODEL_SHORTOPTS, longopts)) != -1) {
        if (c == 'f') file = optarg;
        else if (c == 'o') output = optarg;
        else if (c == 's') similarity = 1;
        else if (c == 'i') images = 1;
        else if (c == 2000) {
            static const char *const modes[] = {"mean", "cls", "max", "mean_sqrt"};
            for (int i = 0; i < 4; i++)
                if (!strcmp(optarg, modes[i])) eo.pooling = (vkf_pooling)(VKF_POOL_MEAN + i);
            if (!eo.pooling) rc = tool_usage_error("--pooling takes mean, cls, max or mean_sqrt, not '%s'", optarg);
        } else if (c == 2001) {
            if (!strcmp(optarg, "yes")) eo.normalize = VKF_ON;
            else if (!strcmp(optarg, "no")) eo.normalize = VKF_OFF;
            else rc = tool_usage_error("--normalize takes yes or no, not '%s'", optarg);
        } else rc = tool_model_option(c, optarg, &mo, usage);
    }
    if (rc != TOOL_CONTINUE) return rc;
    if (file && optind < argc) return tool_usage_error("give texts as arguments or with --file, not both");
    if (images && (file || optind == argc)) return tool_usage_error("--images takes image files as arguments");
    mo.task = "feature-extraction";
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    rc = tool_open_model(&mo, &ctx, &model);
    vkf_model_info info = {0};
    uint32_t D = 0, per = mo.batch ? mo.batch : 32;
    if (rc == TOOL_OK) {
        vkf_model_get_info(model, &info);
        D = info.embedding_size;
        /* a model without a text tower takes images */
        if (!images && !info.vocab_size && info.image_height && !strcmp(info.family, "clip")) images = 1;
    }
    int collect = output || similarity; /* the matrix needs every vector first */
    tool_input in;
    tool_texts batch = {0}, all_names = {0};
    if (rc == TOOL_OK) rc = tool_input_open(&in, argv + optind, (size_t)(argc - optind), file, 1);
    else memset(&in, 0, sizeof in);
    float *e = rc == TOOL_OK ? malloc((size_t)per * D * sizeof *e) : NULL, *all = NULL;
    if (rc == TOOL_OK && !e) rc = tool_fail("out of memory");
    size_t n = 0, all_cap = 0;
    double t_run = 0;
    while (rc == TOOL_OK) {
        rc = tool_input_next(&in, &batch, per);
        uint32_t b = (uint32_t)batch.count;
        if (rc != TOOL_OK || !b) break;
        tool_set_batch(&batch);
        double t0 = tool_now();
        vkf_status st = images ? vkf_embed_image_files(model, (const char *const *)batch.s, b, e)
                               : vkf_embed(model, (const char *const *)batch.s, b, &eo, e);
        t_run += tool_now() - t0;
        if (st != VKF_OK) rc = tool_fail_lib(ctx);
        tool_set_batch(NULL);
        if (rc == TOOL_OK && collect) rc = keep(&all, &all_cap, n * D, e, (size_t)b * D);
        for (uint32_t i = 0; i < b && rc == TOOL_OK && similarity; i++) rc = tool_texts_add(&all_names, batch.s[i], batch.n[i], batch.where[i]);
        for (uint32_t i = 0; i < b && rc == TOOL_OK && !collect; i++) print_vector(&mo, e + (size_t)i * D, D);
        fflush(stdout); /* each batch's results as it finishes */
        n += b;
        tool_progress_count(mo.quiet, "embedded", n, images ? "images" : "texts");
    }
    if (rc == TOOL_OK && !n) rc = tool_usage_error("no texts to embed");
    if (rc == TOOL_OK && output) {
        vkf_tensor t = {.rank = 2, .shape = {(uint32_t)n, D}, .data = all, .dtype = VKF_F32};
        if (vkf_npy_save(output, &t) != VKF_OK) rc = tool_fail("%s", vkf_last_error(NULL));
    }
    if (rc == TOOL_OK && similarity) rc = print_similarity(&mo, all, n, D, all_names.s, all_names.n);
    else if (rc == TOOL_OK && output && mo.out.format != TOOL_TEXT)
        for (size_t i = 0; i < n; i++) print_vector(&mo, all + i * D, D);
    if (mo.out.format == TOOL_JSON && (rc == TOOL_OK || mo.out.items)) tool_emit_end(&mo.out);
    if (rc == TOOL_OK) tool_timing(&mo, t_run, n, images ? "image" : "text");
    free(e);
    free(all);
    tool_texts_free(&batch);
    tool_texts_free(&all_names);
    tool_input_close(&in);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
