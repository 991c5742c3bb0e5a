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
               "is given) as the model's sentence-transformers configuration says: pooling\n"
               "(1_Pooling/config.json, else mean) and normalisation (a Normalize module);\n"
               "with a CLIP model, its text embeddings, or with --images its image embeddings\n"
               "(the arguments are image files; a vision-only CLIP takes images anyway).\n"
               "Prints one vector per line, or with --similarity the cosine matrix.\n"
               "\n"
               "  -i, --images           the arguments are images (CLIP)\n"
               "  -f, --file F           texts, one per line ('-': standard input); empty lines skipped\n"
               "  -o, --output F.npy     write the [texts, dim] float32 matrix to F.npy\n"
               "  -s, --similarity       print the cosine similarity of every pair of texts\n"
               "      --pooling MODE     mean, cls, max or mean_sqrt (default: the model's)\n"
               "      --normalize yes|no L2-normalise (default: the model's)\n");
    tool_model_usage(f);
    fprintf(f, "Exit status: 0 success, 1 a file, the model or a text failed, 2 bad usage.\n");
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
    while (rc == TOOL_CONTINUE && (c = getopt_long(argc, argv, "f:o:si" TOOL_MODEL_SHORTOPTS, longopts, NULL)) != -1) {
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
    tool_texts texts = {0};
    rc = TOOL_OK;
    for (int i = optind; i < argc && rc == TOOL_OK; i++) rc = tool_texts_add(&texts, argv[i], strlen(argv[i]));
    if (rc == TOOL_OK && optind == argc) rc = tool_texts_from_file(&texts, file ? file : "-", 1);
    if (rc == TOOL_OK && !texts.count) rc = tool_usage_error("no texts to embed");
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    if (rc == TOOL_OK) rc = tool_open_model(&mo, &ctx, &model);
    vkf_model_info info = {0};
    float *e = NULL;
    uint32_t n = (uint32_t)texts.count, D = 0;
    if (rc == TOOL_OK) {
        vkf_model_get_info(model, &info);
        D = info.embedding_size;
        e = malloc((size_t)n * D * sizeof *e);
        if (!e) rc = tool_fail("out of memory");
        /* a model without a text tower takes images */
        if (!images && !info.vocab_size && info.image_height && !strcmp(info.family, "clip")) images = 1;
    }
    vkf_status st = VKF_OK;
    if (rc == TOOL_OK) st = images ? vkf_embed_image_files(model, texts.s, n, e) : vkf_embed(model, texts.s, n, &eo, e);
    if (rc == TOOL_OK && st != VKF_OK) rc = tool_fail("%s", vkf_last_error(ctx));
    if (rc == TOOL_OK && output) {
        vkf_tensor t = {.rank = 2, .shape = {n, D}, .data = e, .dtype = VKF_F32};
        if (vkf_npy_save(output, &t) != VKF_OK) rc = tool_fail("%s", vkf_last_error(NULL));
    }
    double *cs = NULL;
    if (rc == TOOL_OK && similarity) {
        cs = malloc((size_t)n * n * sizeof *cs);
        if (!cs) rc = tool_fail("out of memory");
        for (uint32_t i = 0; cs && i < n; i++)
            for (uint32_t j = 0; j < n; j++) {
                double ab = 0, aa = 0, bb = 0;
                for (uint32_t k = 0; k < D; k++) {
                    double a = e[(size_t)i * D + k], b = e[(size_t)j * D + k];
                    ab += a * b, aa += a * a, bb += b * b;
                }
                cs[(size_t)i * n + j] = ab / fmax(sqrt(aa * bb), 1e-12);
            }
    }
    if (rc == TOOL_OK && mo.json) {
        cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "embeddings");
        for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateFloatArray(e + (size_t)i * D, (int)D));
        if (cs) {
            cJSON *sim = cJSON_AddArrayToObject(root, "similarity");
            for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(sim, cJSON_CreateDoubleArray(cs + (size_t)i * n, (int)n));
        }
        char *s = cJSON_PrintUnformatted(root);
        if (s) puts(s);
        free(s);
        cJSON_Delete(root);
    } else if (rc == TOOL_OK && cs) {
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = 0; j < n; j++) printf(j ? " %7.4f" : "%7.4f", cs[(size_t)i * n + j]);
            printf("   %.*s\n", (int)(texts.n[i] > 60 ? 60 : texts.n[i]), texts.s[i]);
        }
    } else if (rc == TOOL_OK && !output) {
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t k = 0; k < D; k++) printf(k ? " %.6g" : "%.6g", e[(size_t)i * D + k]);
            putchar('\n');
        }
    }
    free(cs);
    free(e);
    tool_texts_free(&texts);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
