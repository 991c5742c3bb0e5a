/* vkformer-tokenize: text to token ids (and back) with a Hugging Face
 * tokenizer, as `AutoTokenizer.from_pretrained(dir)(text)` would give them.
 * Uses only the public API (include/vkformer.h). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "vkformer.h"

const char *tool_name = "vkformer-tokenize";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkformer-tokenize --model DIR [options] [TEXT...]\n"
            "       vkformer-tokenize --model DIR --decode ID...\n"
            "Prints the token ids of each TEXT, one line per text, separated by spaces.\n"
            "With no TEXT, the whole standard input is one text (newlines and all bytes kept).\n"
            "\n"
            "  -m, --model DIR       model or tokenizer directory (tokenizer.json, a SentencePiece\n"
            "                        spiece.model / tokenizer.model / ..., vocab.txt, or\n"
            "                        vocab.json + merges.txt), or a tokenizer.json path\n"
            "  -p, --pair TEXT       encode each TEXT as a pair with this second text\n"
            "  -n, --no-special      no special tokens ([CLS], [SEP], <|startoftext|>, ...)\n"
            "  -l, --max-length N    truncate to N tokens (special tokens included; pairs\n"
            "                        shorten the longer text first)\n"
            "  -f, --file F          one text per line of F ('-': standard input), read and\n"
            "                        printed a line at a time\n"
            "  -j, --json            a JSON array, one element per text: input_ids, tokens,\n"
            "                        token_type_ids, attention_mask, offset_mapping (byte offsets)\n"
            "      --jsonl           the same elements, one JSON line per text\n"
            "  -q, --quiet           no timing line\n"
            "  -d, --decode          the arguments are ids: print their text\n"
            "  -s, --skip-special    with --decode: leave special tokens out\n"
            "  -V, --version         print the version\n"
            "  -h, --help            this help\n"
            "Exit status: 0 success, 1 a file or text could not be used, 2 bad usage.\n");
}

static cJSON *encoding_json(const vkf_tokenizer *tok, const vkf_encoding *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ids = cJSON_AddArrayToObject(o, "input_ids"), *toks = cJSON_AddArrayToObject(o, "tokens");
    cJSON *types = cJSON_AddArrayToObject(o, "token_type_ids"), *mask = cJSON_AddArrayToObject(o, "attention_mask");
    cJSON *offs = cJSON_AddArrayToObject(o, "offset_mapping");
    for (uint32_t i = 0; i < e->length; i++) {
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(e->ids[i]));
        const char *t = vkf_tokenizer_id_to_token(tok, e->ids[i]);
        cJSON_AddItemToArray(toks, cJSON_CreateString(t ? t : ""));
        cJSON_AddItemToArray(types, cJSON_CreateNumber(e->type_ids[i]));
        cJSON_AddItemToArray(mask, cJSON_CreateNumber(e->attention_mask[i]));
        int pair[2] = {(int)e->offsets[i][0], (int)e->offsets[i][1]};
        cJSON_AddItemToArray(offs, cJSON_CreateIntArray(pair, 2));
    }
    return o;
}

static int decode(const vkf_tokenizer *tok, char **args, int n, int skip_special)
{
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!ids) return tool_fail("out of memory");
    for (int i = 0; i < n; i++) {
        unsigned v;
        if (!tool_parse_u32(args[i], 0, INT32_MAX, &v)) {
            free(ids);
            return tool_usage_error("--decode: '%s' is not a token id", args[i]);
        }
        ids[i] = (int32_t)v;
    }
    char *text = NULL;
    size_t len = 0;
    vkf_status s = vkf_tokenizer_decode(tok, ids, (size_t)n, skip_special, &text, &len);
    free(ids);
    if (s != VKF_OK) return tool_fail("%s", vkf_last_error(NULL));
    fwrite(text, 1, len, stdout);
    putchar('\n');
    vkf_free(text);
    return TOOL_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'}, {"pair", required_argument, 0, 'p'},
        {"no-special", no_argument, 0, 'n'},  {"max-length", required_argument, 0, 'l'},
        {"file", required_argument, 0, 'f'},  {"json", no_argument, 0, 'j'},
        {"decode", no_argument, 0, 'd'},      {"skip-special", no_argument, 0, 's'},
        {"version", no_argument, 0, 'V'},     {"help", no_argument, 0, 'h'},
        {"jsonl", no_argument, 0, 1000},      {"quiet", no_argument, 0, 'q'},
        {0, 0, 0, 0}};
    const char *model = NULL, *pair = NULL, *file = NULL;
    vkf_encode_options opt = {0};
    tool_output out = {0};
    int do_decode = 0, skip_special = 0, quiet = 0, c;
    while ((c = tool_getopt(argc, argv, "m:p:nl:f:jdsqVh", longopts)) != -1) {
        unsigned v;
        switch (c) {
        case 'm': model = optarg; break;
        case 'p': pair = optarg; break;
        case 'n': opt.no_special_tokens = 1; break;
        case 'l':
            if (!tool_parse_u32(optarg, 1, 1u << 30, &v)) return tool_usage_error("--max-length takes a positive number, not '%s'", optarg);
            opt.max_length = v;
            break;
        case 'f': file = optarg; break;
        case 'j': out.format = TOOL_JSON; break;
        case 1000: out.format = TOOL_JSONL; break;
        case 'q': quiet = 1; break;
        case 'd': do_decode = 1; break;
        case 's': skip_special = 1; break;
        case 'V': tool_print_version(); return TOOL_OK;
        case 'h': usage(stdout); return TOOL_OK;
        default: return TOOL_USAGE; /* tool_getopt said why */
        }
    }
    if (!model) return tool_usage_error("--model DIR is required");
    if (do_decode && optind == argc) return tool_usage_error("--decode needs token ids");
    if (file && optind < argc) return tool_usage_error("give texts as arguments or with --file, not both");
    vkf_tokenizer *tok;
    double t0 = tool_now();
    if (vkf_tokenizer_load(model, &tok) != VKF_OK) return tool_fail("%s", vkf_last_error(NULL));
    double t_load = tool_now() - t0;
    if (do_decode) {
        int rc = decode(tok, argv + optind, argc - optind, skip_special);
        vkf_tokenizer_destroy(tok);
        return rc;
    }
    /* The texts: arguments, lines of --file (a line at a time), or all of standard input. */
    tool_input in;
    tool_texts texts = {0};
    int rc = TOOL_OK, whole_stdin = optind == argc && !file;
    if (whole_stdin) {
        size_t size;
        char *all = tool_read_all("-", &size);
        rc = all ? tool_texts_add(&texts, all, size, 1) : TOOL_FAIL;
        free(all);
        memset(&in, 0, sizeof in);
    } else {
        rc = tool_input_open(&in, argv + optind, (size_t)(argc - optind), file, 0);
    }
    size_t done = 0, tokens = 0;
    double t_run = 0;
    while (rc == TOOL_OK) {
        if (!whole_stdin) rc = tool_input_next(&in, &texts, 1);
        if (rc != TOOL_OK || !texts.count) break;
        vkf_encoding e;
        double t1 = tool_now();
        vkf_status st = vkf_tokenizer_encode(tok, texts.s[0], texts.n[0], pair, VKF_TEXT_NUL, &opt, &e);
        t_run += tool_now() - t1;
        if (st != VKF_OK) {
            char name[64];
            rc = tool_fail("%s: %s", tool_text_name(&texts, 0, name, sizeof name), vkf_last_error(NULL));
            break;
        }
        if (out.format != TOOL_TEXT) {
            tool_emit(&out, encoding_json(tok, &e));
        } else {
            for (uint32_t k = 0; k < e.length; k++) printf(k ? " %d" : "%d", e.ids[k]);
            putchar('\n');
            if (in.f) fflush(stdout); /* lines from a file or a pipe: each as it is done */
        }
        done++, tokens += e.length;
        vkf_encoding_free(&e);
        if (whole_stdin) break;
    }
    if (out.format == TOOL_JSON && (rc == TOOL_OK || out.items)) tool_emit_end(&out);
    if (rc == TOOL_OK && !quiet)
        fprintf(stderr, "%s: load %.1f ms, %zu text%s (%zu tokens) in %.1f ms\n", tool_name, t_load * 1e3, done, done == 1 ? "" : "s",
                tokens, t_run * 1e3);
    tool_texts_free(&texts);
    if (!whole_stdin) tool_input_close(&in);
    vkf_tokenizer_destroy(tok);
    return rc;
}
