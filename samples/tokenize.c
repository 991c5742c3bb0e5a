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
            "  -m, --model DIR       model or tokenizer directory (tokenizer.json, or vocab.txt,\n"
            "                        or vocab.json + merges.txt), or a tokenizer.json path\n"
            "  -p, --pair TEXT       encode each TEXT as a pair with this second text\n"
            "  -n, --no-special      no special tokens ([CLS], [SEP], <|startoftext|>, ...)\n"
            "  -l, --max-length N    truncate to N tokens (special tokens included; pairs\n"
            "                        shorten the longer text first)\n"
            "  -f, --file F          read one text per line from F ('-': standard input)\n"
            "  -j, --json            JSON: ids, tokens, type ids, attention mask, byte offsets\n"
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
    cJSON *offs = cJSON_AddArrayToObject(o, "offsets");
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
        {0, 0, 0, 0}};
    const char *model = NULL, *pair = NULL, *file = NULL;
    vkf_encode_options opt = {0};
    int json = 0, do_decode = 0, skip_special = 0, c;
    while ((c = getopt_long(argc, argv, "m:p:nl:f:jdsVh", longopts, NULL)) != -1) {
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
        case 'j': json = 1; break;
        case 'd': do_decode = 1; break;
        case 's': skip_special = 1; break;
        case 'V': tool_print_version(); return TOOL_OK;
        case 'h': usage(stdout); return TOOL_OK;
        default: return tool_usage_error("unknown or incomplete option");
        }
    }
    if (!model) return tool_usage_error("--model DIR is required");
    if (do_decode && optind == argc) return tool_usage_error("--decode needs token ids");
    if (file && optind < argc) return tool_usage_error("give texts as arguments or with --file, not both");
    vkf_tokenizer *tok;
    if (vkf_tokenizer_load(model, &tok) != VKF_OK) return tool_fail("%s", vkf_last_error(NULL));
    if (do_decode) {
        int rc = decode(tok, argv + optind, argc - optind, skip_special);
        vkf_tokenizer_destroy(tok);
        return rc;
    }
    /* The texts: arguments, lines of --file, or all of standard input. */
    char *input = NULL;
    size_t input_len = 0;
    tool_texts texts = {0};
    int rc = TOOL_OK;
    if (optind < argc) {
        for (int i = optind; i < argc && rc == TOOL_OK; i++) rc = tool_texts_add(&texts, argv[i], strlen(argv[i]));
    } else if (file) {
        rc = tool_texts_from_file(&texts, file, 0);
    } else {
        input = tool_read_all("-", &input_len);
        rc = input ? tool_texts_add(&texts, input, input_len) : TOOL_FAIL;
    }
    cJSON *all = json && rc == TOOL_OK ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < texts.count && rc == TOOL_OK; i++) {
        vkf_encoding e;
        if (vkf_tokenizer_encode(tok, texts.s[i], texts.n[i], pair, VKF_TEXT_NUL, &opt, &e) != VKF_OK) {
            rc = tool_fail("text %zu: %s", i + 1, vkf_last_error(NULL));
            break;
        }
        if (json) {
            cJSON_AddItemToArray(all, encoding_json(tok, &e));
        } else {
            for (uint32_t k = 0; k < e.length; k++) printf(k ? " %d" : "%d", e.ids[k]);
            putchar('\n');
        }
        vkf_encoding_free(&e);
    }
    if (all && rc == TOOL_OK) {
        char *s = cJSON_Print(all);
        if (s) puts(s);
        else rc = tool_fail("out of memory");
        free(s);
    }
    cJSON_Delete(all);
    free(input);
    tool_texts_free(&texts);
    vkf_tokenizer_destroy(tok);
    return rc;
}
