/* vkformer-zero-shot: classifies images against labels the model never
 * trained on (CLIP), as HF's zero-shot-image-classification pipeline does.
 * Uses only the public API. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

const char *tool_name = "vkformer-zero-shot";

static void usage(FILE *f)
{
    fprintf(f, "usage: vkformer-zero-shot --model DIR (--labels \"cat,dog,car\" | --labels-file F) [options] IMAGE...\n"
               "Scores each image against every label with a CLIP model (CLIPModel): each label\n"
               "goes into the hypothesis template, and the probabilities are the softmax over\n"
               "the labels of the image-text similarities. The labels are embedded once for all\n"
               "the images.\n"
               "\n");
    tool_labels_usage(f, VKF_ZERO_SHOT_TEMPLATE);
    fprintf(f, "  -k, --top K            labels printed per image (default: all)\n");
    tool_model_usage(f);
    fprintf(f, "Exit status: 0 success, 1 a file or the model failed, 2 bad usage.\n");
}

typedef struct ranked {
    uint32_t index;
    float prob;
} ranked;

static int by_prob(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->prob != y->prob) return x->prob < y->prob ? 1 : -1;
    return x->index < y->index ? -1 : 1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"labels", required_argument, 0, 'l'}, {"labels-file", required_argument, 0, 2000},
                                             {"template", required_argument, 0, 't'}, {"top", required_argument, 0, 'k'},
                                             TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    const char *labels_arg = NULL, *labels_file = NULL, *tmpl = VKF_ZERO_SHOT_TEMPLATE;
    unsigned top = 0;
    int c, rc = TOOL_CONTINUE;
    while (rc == TOOL_CONTINUE && (c = tool_getopt(argc, argv, "l:t:k:" TOOL_MODEL_SHORTOPTS, longopts)) != -1) {
        if (c == 'l') labels_arg = optarg;
        else if (c == 2000) labels_file = optarg;
        else if (c == 't') tmpl = optarg;
        else if (c == 'k') {
            if (!tool_parse_u32(optarg, 1, 1u << 20, &top)) rc = tool_usage_error("--top takes a count from 1, not '%s'", optarg);
        } else rc = tool_model_option(c, optarg, &mo, usage);
    }
    if (rc != TOOL_CONTINUE) return rc;
    if (!strstr(tmpl, "{}")) return tool_usage_error("the template '%s' has no {} for the label", tmpl);
    if (optind == argc) return tool_usage_error("give at least one IMAGE");
    tool_texts labels = {0};
    rc = tool_labels(labels_arg, labels_file, &labels);
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    mo.task = "zero-shot-image-classification";
    if (rc == TOOL_OK) rc = tool_open_model(&mo, &ctx, &model);
    uint32_t nl = (uint32_t)labels.count, ni = (uint32_t)(argc - optind), E = 0;
    vkf_model_info info = {0};
    if (rc == TOOL_OK) {
        vkf_model_get_info(model, &info);
        E = info.embedding_size;
    }
    /* the labels in the template, embedded once */
    char **texts = rc == TOOL_OK ? calloc(nl, sizeof *texts) : NULL;
    float *temb = rc == TOOL_OK ? malloc((size_t)nl * E * sizeof(float)) : NULL;
    float *iemb = rc == TOOL_OK ? malloc((size_t)E * sizeof(float)) : NULL, *probs = rc == TOOL_OK ? malloc(nl * sizeof(float)) : NULL;
    ranked *order = rc == TOOL_OK ? malloc(nl * sizeof *order) : NULL;
    if (rc == TOOL_OK && (!texts || !temb || !iemb || !probs || !order)) rc = tool_fail("out of memory");
    const char *hole = strstr(tmpl, "{}");
    for (uint32_t i = 0; i < nl && rc == TOOL_OK; i++) {
        size_t pre = (size_t)(hole - tmpl), len = labels.n[i], post = strlen(hole + 2);
        texts[i] = malloc(pre + len + post + 1);
        if (!texts[i]) {
            rc = tool_fail("out of memory");
            break;
        }
        memcpy(texts[i], tmpl, pre);
        memcpy(texts[i] + pre, labels.s[i], len);
        memcpy(texts[i] + pre + len, hole + 2, post + 1);
    }
    double t0 = tool_now();
    if (rc == TOOL_OK && vkf_embed(model, (const char *const *)texts, nl, NULL, temb) != VKF_OK) rc = tool_fail_lib(ctx);
    uint32_t shown = top ? (top < nl ? top : nl) : nl;
    for (uint32_t i = 0; i < ni && rc == TOOL_OK; i++) {
        const char *path = argv[optind + i];
        if (vkf_embed_image_files(model, &path, 1, iemb) != VKF_OK || vkf_zero_shot_scores(model, iemb, 1, temb, nl, probs) != VKF_OK) {
            rc = tool_fail_lib(ctx);
            break;
        }
        for (uint32_t j = 0; j < nl; j++) order[j] = (ranked){j, probs[j]};
        qsort(order, nl, sizeof *order, by_prob);
        if (mo.out.format != TOOL_TEXT) { /* HF's list of {score, label} per image */
            cJSON *list = cJSON_CreateArray();
            for (uint32_t j = 0; j < shown; j++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "score", order[j].prob);
                cJSON_AddStringToObject(o, "label", labels.s[order[j].index]);
                cJSON_AddItemToArray(list, o);
            }
            tool_emit(&mo.out, list);
        } else {
            tool_results_begin();
            printf("%s:\n", path);
            for (uint32_t j = 0; j < shown; j++) printf("  %.4f  %s\n", order[j].prob, labels.s[order[j].index]);
            fflush(stdout);
        }
        tool_progress_count(mo.quiet, "classified", i + 1, "images");
    }
    if (mo.out.format == TOOL_JSON && (rc == TOOL_OK || mo.out.items)) tool_emit_end(&mo.out);
    if (rc == TOOL_OK) tool_timing(&mo, tool_now() - t0, ni, "image");
    for (uint32_t i = 0; texts && i < nl; i++) free(texts[i]);
    free(texts), free(temb), free(iemb), free(probs), free(order);
    tool_texts_free(&labels);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
