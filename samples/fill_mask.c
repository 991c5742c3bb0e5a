/* vkformer-fill-mask: the likeliest tokens for each mask token of a text, as
 * HF's fill-mask pipeline gives them. Uses only the public API. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

const char *tool_name = "vkformer-fill-mask";

static void usage(FILE *f)
{
    fprintf(f, "usage: vkformer-fill-mask --model DIR [--top K] [TEXT... | --file F]\n"
               "For every mask token ([MASK], <mask>) of each text, the K likeliest tokens with\n"
               "their probabilities (a masked-language model: BertForMaskedLM, ...). Texts are the\n"
               "arguments, or one per line of --file F or of standard input.\n"
               "\n"
               "  -k, --top K            tokens per mask (default 5)\n"
               "  -f, --file F           texts, one per line ('-': standard input); empty lines skipped\n");
    tool_model_usage(f);
    fprintf(f, "--json / --jsonl as HF's pipeline: per text a list of {score, token, token_str,\n"
               "sequence}, or a list of such lists when the text has several masks.\n"
               "Exit status: 0 success, 1 the model failed or a text has no mask, 2 bad usage.\n");
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

/* One text's results: HF's list (one mask) or list of lists, or text lines. */
static void print_text(tool_model_opts *o, const vkf_model *model, const char *text, const vkf_fill_mask_result *r, uint32_t n,
                       uint32_t k)
{
    cJSON *masks = o->out.format != TOOL_TEXT ? cJSON_CreateArray() : NULL, *cur = NULL;
    if (!masks) tool_results_begin(), printf("%s\n", text);
    for (uint32_t i = 0; i < n; i++) {
        char *seq = sequence(vkf_model_tokenizer(model), text, r[i].mask, r[i].token);
        if (masks) {
            if (i % k == 0) cJSON_AddItemToArray(masks, cur = cJSON_CreateArray());
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "score", r[i].score);
            cJSON_AddNumberToObject(e, "token", r[i].token);
            cJSON_AddStringToObject(e, "token_str", r[i].token_str);
            cJSON_AddStringToObject(e, "sequence", seq ? seq : "");
            cJSON_AddItemToArray(cur, e);
        } else {
            if (i % k == 0 && n > k) printf(" mask %u:\n", r[i].mask + 1);
            printf("  %6.4f  %-16s %s\n", r[i].score, r[i].token_str, seq ? seq : "");
        }
        vkf_free(seq);
    }
    if (masks && cJSON_GetArraySize(masks) == 1) { /* one mask: HF gives its list alone */
        cJSON *only = cJSON_DetachItemFromArray(masks, 0);
        cJSON_Delete(masks);
        masks = only;
    }
    if (masks) tool_emit(&o->out, masks);
    else fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"top", required_argument, 0, 'k'}, {"file", required_argument, 0, 'f'},
                                             TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    const char *file = NULL;
    unsigned k = 5;
    int c, rc = TOOL_CONTINUE;
    while (rc == TOOL_CONTINUE && (c = tool_getopt(argc, argv, "k:f:" TOOL_MODEL_SHORTOPTS, longopts)) != -1) {
        if (c == 'k') {
            if (!tool_parse_u32(optarg, 1, 1000, &k)) rc = tool_usage_error("--top takes 1 to 1000, not '%s'", optarg);
        } else if (c == 'f') file = optarg;
        else rc = tool_model_option(c, optarg, &mo, usage);
    }
    if (rc != TOOL_CONTINUE) return rc;
    if (file && optind < argc) return tool_usage_error("give texts as arguments or with --file, not both");
    mo.task = "fill-mask";
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    rc = tool_open_model(&mo, &ctx, &model);
    tool_input in;
    tool_texts texts = {0};
    if (rc == TOOL_OK) rc = tool_input_open(&in, argv + optind, (size_t)(argc - optind), file, 1);
    else memset(&in, 0, sizeof in);
    uint32_t cap = 64 * k;
    vkf_fill_mask_result *r = malloc(cap * sizeof *r);
    if (rc == TOOL_OK && !r) rc = tool_fail("out of memory");
    size_t done = 0;
    double t_run = 0;
    while (rc == TOOL_OK) {
        rc = tool_input_next(&in, &texts, 1);
        if (rc != TOOL_OK || !texts.count) break;
        uint32_t n = 0;
        tool_set_batch(&texts);
        double t0 = tool_now();
        if (vkf_fill_mask(model, texts.s[0], k, r, cap, &n) != VKF_OK) {
            char name[64];
            rc = tool_fail("%s: %s", tool_text_name(&texts, 0, name, sizeof name), vkf_last_error(ctx));
        }
        t_run += tool_now() - t0;
        tool_set_batch(NULL);
        if (rc == TOOL_OK) print_text(&mo, model, texts.s[0], r, n, k);
        tool_progress_count(mo.quiet, "filled", ++done, "texts");
    }
    if (rc == TOOL_OK && !done) rc = tool_usage_error("give at least one TEXT with a mask token");
    if (mo.out.format == TOOL_JSON && (rc == TOOL_OK || mo.out.items)) tool_emit_end(&mo.out);
    if (rc == TOOL_OK) tool_timing(&mo, t_run, done, "text");
    free(r);
    tool_texts_free(&texts);
    tool_input_close(&in);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
