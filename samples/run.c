/* vkformer-run: the tensor-level runner, for comparing with other
 * frameworks: named .npy inputs in, named .npy outputs out, as HF names them.
 * Uses only the public API (include/vkformer.h). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

const char *tool_name = "vkformer-run";

static void usage(FILE *f)
{
    fprintf(f, "usage: vkformer-run --model DIR --input NAME=FILE.npy ... --output NAME=FILE.npy ...\n"
               "Runs a model once on .npy inputs and writes its outputs as float32 .npy files.\n"
               "Inputs (float32, float16, int32 or int64, C order; the shape from the header):\n"
               "  text models   input_ids, attention_mask, token_type_ids, position_ids  [N, tokens]\n"
               "  image models  pixel_values [N, C, H, W]\n"
               "  CLIP          pixel_values and/or input_ids, attention_mask\n"
               "  audio models  input_values [N, samples] (float32), attention_mask [N, samples]\n"
               "Outputs: logits, last_hidden_state, pooler_output (text), pooled (image);\n"
               "GPT-2: logits [N, tokens, vocab], last_hidden_state; audio: logits ([N, frames,\n"
               "vocab] for CTC heads, [N, labels] for classifiers), last_hidden_state; CLIP: logits_per_image,\n"
               "logits_per_text, image_embeds, text_embeds, vision_pooled, text_pooled,\n"
               "vision_last_hidden_state, text_last_hidden_state (an unknown output name lists\n"
               "the model's outputs).\n"
               "\n"
               "  -i, --input NAME=FILE    an input tensor (repeat)\n"
               "  -o, --output NAME=FILE   an output to write (repeat)\n");
    tool_model_usage(f);
    fprintf(f, "--json / --jsonl: per output, {\"name\", \"file\", \"shape\", \"dtype\"}.\n"
               "Exit status: 0 success, 1 a file, the model or the device failed, 2 bad usage.\n");
}

typedef struct named {
    const char *name, *path;
} named;

static int split(char *arg, named *out, const char *what)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) return tool_usage_error("%s takes NAME=FILE, not '%s'", what, arg);
    *eq = 0;
    out->name = arg, out->path = eq + 1;
    return TOOL_CONTINUE;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"input", required_argument, 0, 'i'}, {"output", required_argument, 0, 'o'}, TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    named ins[8], outs[8];
    int n_in = 0, n_out = 0, c, rc = TOOL_CONTINUE;
    while (rc == TOOL_CONTINUE && (c = tool_getopt(argc, argv, "i:o:" TOOL_MODEL_SHORTOPTS, longopts)) != -1) {
        if (c == 'i') rc = n_in < 8 ? split(optarg, &ins[n_in++], "--input") : tool_usage_error("at most 8 inputs");
        else if (c == 'o') rc = n_out < 8 ? split(optarg, &outs[n_out++], "--output") : tool_usage_error("at most 8 outputs");
        else rc = tool_model_option(c, optarg, &mo, usage);
    }
    if (rc != TOOL_CONTINUE) return rc;
    if (optind < argc) return tool_usage_error("unexpected argument '%s'", argv[optind]);
    if (!n_in || !n_out) return tool_usage_error("give at least one --input and one --output");
    vkf_tensor in[8] = {{0}}, out[8] = {{0}};
    rc = TOOL_OK;
    for (int i = 0; i < n_in && rc == TOOL_OK; i++) {
        if (vkf_npy_load(ins[i].path, &in[i]) != VKF_OK) rc = tool_fail("%s", vkf_last_error(NULL));
        in[i].name = ins[i].name;
    }
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    if (rc == TOOL_OK) rc = tool_open_model(&mo, &ctx, &model);
    /* the outputs' shapes: a first run without data fills them in */
    for (int i = 0; i < n_out; i++) out[i].name = outs[i].name;
    if (rc == TOOL_OK && vkf_model_run(model, in, (uint32_t)n_in, out, (uint32_t)n_out) != VKF_OK)
        rc = tool_fail("%s", vkf_last_error(ctx));
    for (int i = 0; i < n_out && rc == TOOL_OK; i++) {
        uint64_t n = 1;
        for (uint32_t k = 0; k < out[i].rank; k++) n *= out[i].shape[k];
        out[i].data = malloc(n * 4 + 4);
        out[i].capacity = n * 4;
        if (!out[i].data) rc = tool_fail("out of memory");
    }
    double t0 = tool_now();
    if (rc == TOOL_OK && vkf_model_run(model, in, (uint32_t)n_in, out, (uint32_t)n_out) != VKF_OK)
        rc = tool_fail("%s", vkf_last_error(ctx));
    double t_run = tool_now() - t0;
    for (int i = 0; i < n_out && rc == TOOL_OK; i++) {
        if (vkf_npy_save(outs[i].path, &out[i]) != VKF_OK) {
            rc = tool_fail("%s", vkf_last_error(NULL));
        } else if (mo.out.format != TOOL_TEXT) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", out[i].name);
            cJSON_AddStringToObject(o, "file", outs[i].path);
            cJSON *shape = cJSON_AddArrayToObject(o, "shape");
            for (uint32_t k = 0; k < out[i].rank; k++) cJSON_AddItemToArray(shape, cJSON_CreateNumber(out[i].shape[k]));
            cJSON_AddStringToObject(o, "dtype", "float32");
            tool_emit(&mo.out, o);
        } else {
            printf("%s: %s [", outs[i].path, out[i].name);
            for (uint32_t k = 0; k < out[i].rank; k++) printf("%s%u", k ? ", " : "", out[i].shape[k]);
            printf("] float32\n");
        }
    }
    if (mo.out.format == TOOL_JSON && (rc == TOOL_OK || mo.out.items)) tool_emit_end(&mo.out);
    if (rc == TOOL_OK) tool_timing(&mo, t_run, 1, "run");
    for (int i = 0; i < 8; i++) vkf_free(in[i].data), free(out[i].data);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
