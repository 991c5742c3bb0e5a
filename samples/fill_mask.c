/* vkformer-fill-mask: the likeliest tokens for each mask token of a text, as
 * HF's fill-mask pipeline gives them. Uses only the public API. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

const char *tool_name = "vkformer-fill-mask";

static void usage(FILE *f)
{
    fprintf(f, "usage: vkformer-fill-mask --model DIR [--top K] TEXT...\n"
               "For every mask token ([MASK], <mask>) of each text, the K likeliest tokens with\n"
               "their probabilities (a masked-language model: BertForMaskedLM, ...).\n"
               "\n"
               "  -k, --top K            tokens per mask (default 5)\n");
    tool_model_usage(f);
    fprintf(f, "Exit status: 0 success, 1 the model failed or a text has no mask, 2 bad usage.\n");
}

/* HF's "sequence": the text's ids with the mask replaced, decoded without special tokens. */
static char *sequence(const vkf_tokenizer *tok, const char *text, uint32_t mask_index, int32_t token)
{
    vkf_encoding e;
    if (vkf_tokenizer_encode(tok, text, VKF_TEXT_NUL, NULL, 0, NULL, &e) != VKF_OK) return NULL;
    vkf_tokenizer_info ti;
    vkf_tokenizer_get_info(tok, &ti);
    for (uint32_t i = 0, seen = 0; i < e.length; i++)
        if (e.ids[i] == ti.mask_id && seen++ == mask_index) e.ids[i] = token;
    char *s = NULL;
    vkf_tokenizer_decode(tok, e.ids, e.length, 1, &s, NULL);
    vkf_encoding_free(&e);
    return s;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"top", required_argument, 0, 'k'}, TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    unsigned k = 5;
    int c, rc = TOOL_CONTINUE;
    while (rc == TOOL_CONTINUE && (c = getopt_long(argc, argv, "k:" TOOL_MODEL_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == 'k') {
            if (!tool_parse_u32(optarg, 1, 1000, &k)) rc = tool_usage_error("--top takes 1 to 1000, not '%s'", optarg);
        } else rc = tool_model_option(c, optarg, &mo, usage);
    }
    if (rc != TOOL_CONTINUE) return rc;
    if (optind == argc) return tool_usage_error("give at least one TEXT with a mask token");
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    rc = tool_open_model(&mo, &ctx, &model);
    cJSON *all = mo.json ? cJSON_CreateArray() : NULL;
    uint32_t cap = 64 * k;
    vkf_fill_mask_result *r = malloc(cap * sizeof *r);
    if (rc == TOOL_OK && !r) rc = tool_fail("out of memory");
    for (int t = optind; t < argc && rc == TOOL_OK; t++) {
        uint32_t n = 0;
        if (vkf_fill_mask(model, argv[t], k, r, cap, &n) != VKF_OK) {
            rc = tool_fail("%s", vkf_last_error(ctx));
            break;
        }
        cJSON *masks = all ? cJSON_CreateArray() : NULL;
        cJSON *cur = NULL;
        if (!all) printf("%s\n", argv[t]);
        for (uint32_t i = 0; i < n; i++) {
            char *seq = sequence(vkf_model_tokenizer(model), argv[t], r[i].mask, r[i].token);
            if (all) {
                if (i % k == 0) cJSON_AddItemToArray(masks, cur = cJSON_CreateArray());
                cJSON *o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "score", r[i].score);
                cJSON_AddNumberToObject(o, "token", r[i].token);
                cJSON_AddStringToObject(o, "token_str", r[i].token_str);
                cJSON_AddStringToObject(o, "sequence", seq ? seq : "");
                cJSON_AddItemToArray(cur, o);
            } else {
                if (i % k == 0 && n > k) printf(" mask %u:\n", r[i].mask + 1);
                printf("  %6.4f  %-16s %s\n", r[i].score, r[i].token_str, seq ? seq : "");
            }
            vkf_free(seq);
        }
        if (all) cJSON_AddItemToArray(all, masks);
    }
    if (all && rc == TOOL_OK) {
        char *s = cJSON_Print(all);
        if (s) puts(s);
        free(s);
    }
    cJSON_Delete(all);
    free(r);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
