/* vkformer-generate: text generation with a causal LM (GPT-2) or an
 * encoder-decoder (BART: text2text-generation, translation, summarization),
 * streamed as it is produced, as HF's pipelines and llama.cpp's main do.
 * Uses only the public API. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

const char *tool_name = "vkformer-generate";

static void usage(FILE *f)
{
    fprintf(f, "usage: vkformer-generate --model DIR [--prompt TEXT]... [-n N] [options]\n"
               "Continues each prompt (standard input when none is given) with a causal language\n"
               "model (GPT2LMHeadModel), or answers it with an encoder-decoder (BART: the prompt is\n"
               "the encoder's input, the output a new text), streaming one prompt's text as it is\n"
               "generated. Greedy unless a sampling option is given (HF's default).\n"
               "\n"
               "  -p, --prompt TEXT      a prompt (repeat for a batch generated together)\n"
               "  -f, --prompt-file F    a file's whole text as a prompt (repeatable; '-': standard input)\n"
               "      --prompt-ids IDS   a prompt as token ids, \"ID ID ...\" (repeatable)\n"
               "  -n, --max-new-tokens N tokens to generate per prompt (default: the model's\n"
               "                         generation_config.json max_length, else 50)\n"
               "      --greedy           always the likeliest token (the default)\n"
               "      --temperature T    sample with temperature T > 0 (default 1 when sampling)\n"
               "      --top-k K          sample among the K likeliest tokens (0: all; default 50)\n"
               "      --top-p P          sample from the smallest set with probability P, 0 < P <= 1\n"
               "      --seed S           sampling seed: the same seed gives the same text\n"
               "                         (default: random, printed on standard error)\n"
               "      --repetition-penalty P  HF's repetition penalty (> 1 discourages repeating any\n"
               "                         token of the prompt or the text so far; default 1: off)\n"
               "      --stop STRING      stop a prompt's generation once its text has STRING (ending\n"
               "                         in the token just generated, kept in the output: HF's\n"
               "                         stop_strings; repeatable)\n"
               "      --ignore-eos       go on past the end-of-text token\n"
               "      --print-ids        print the generated ids (one line per prompt), not text\n"
               "      --num-beams N      beam search with N hypotheses per prompt (encoder-decoders;\n"
               "                         default: the model's generation_config.json, else 1)\n"
               "      --length-penalty P beam scores divided by length^P (default: the model's, else 1)\n"
               "      --early-stopping E true, false or never (HF's; default: the model's, else false)\n"
               "      --no-repeat-ngram-size N  no n-gram of N tokens twice (default: the model's)\n"
               "      --min-new-tokens N EOS refused before N new tokens (default: the model's min_length)\n"
               "      --task T           text-generation (causal LMs), text2text-generation,\n"
               "                         translation or summarization (encoder-decoders: the JSON\n"
               "                         field is generated_text, translation_text or summary_text)\n");
    tool_model_usage(f);
    fprintf(f, "--json / --jsonl as HF's pipeline, per prompt: [{\"generated_text\": prompt and\n"
               "continuation (an encoder-decoder's: the new text), \"generated_ids\", \"prompt_tokens\",\n"
               "\"stop\"}]. Statistics (load time, prompt and generated tokens per second) go to\n"
               "standard error.\n"
               "Exit status: 0 success, 1 the model failed, 2 bad usage.\n");
}

typedef struct stream_state {
    int stream;          /* print text as it comes (one prompt, text output) */
    double first, last;  /* times of the first and last token */
    uint32_t tokens;
} stream_state;

static int on_token(void *user, uint32_t seq, int32_t id, const char *text, size_t len)
{
    stream_state *st = user;
    (void)seq;
    if (id >= 0) {
        st->last = tool_now();
        if (!st->tokens++) st->first = st->last;
    }
    if (st->stream && len) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
    return 0;
}

/* "ID ID ..." into a new array. */
static int parse_ids(const char *s, int32_t **ids, uint32_t *n)
{
    size_t cap = strlen(s) / 2 + 1;
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (!*ids) return 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX) return 0;
        (*ids)[(*n)++] = (int32_t)v;
        p = end;
    }
    return 1;
}

enum { OPT_IDS = 2000, OPT_GREEDY, OPT_TEMP, OPT_TOPK, OPT_TOPP, OPT_SEED, OPT_IGNORE_EOS, OPT_PRINT_IDS, OPT_PENALTY, OPT_STOP, OPT_TASK, OPT_BEAMS, OPT_LP, OPT_NGRAM, OPT_MIN_NEW, OPT_EARLY };

/* A prompt given as ids, as text: the tokenizer's decoding (NULL without one). */
static char *decoded(const vkf_model *model, const int32_t *ids, uint32_t n)
{
    char *text = NULL;
    const vkf_tokenizer *tok = vkf_model_tokenizer(model);
    if (!tok || vkf_tokenizer_decode(tok, ids, n, 0, &text, NULL) != VKF_OK) return NULL;
    return text;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"prompt", required_argument, 0, 'p'},     {"prompt-ids", required_argument, 0, OPT_IDS},
        {"max-new-tokens", required_argument, 0, 'n'}, {"greedy", no_argument, 0, OPT_GREEDY},
        {"temperature", required_argument, 0, OPT_TEMP}, {"top-k", required_argument, 0, OPT_TOPK},
        {"top-p", required_argument, 0, OPT_TOPP},  {"seed", required_argument, 0, OPT_SEED},
        {"ignore-eos", no_argument, 0, OPT_IGNORE_EOS}, {"print-ids", no_argument, 0, OPT_PRINT_IDS},
        {"prompt-file", required_argument, 0, 'f'}, {"repetition-penalty", required_argument, 0, OPT_PENALTY},
        {"stop", required_argument, 0, OPT_STOP},   {"task", required_argument, 0, OPT_TASK},
        {"num-beams", required_argument, 0, OPT_BEAMS}, {"length-penalty", required_argument, 0, OPT_LP},
        {"no-repeat-ngram-size", required_argument, 0, OPT_NGRAM}, {"min-new-tokens", required_argument, 0, OPT_MIN_NEW},
        {"early-stopping", required_argument, 0, OPT_EARLY},
        TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    tool_texts prompts = {0};
    const char *id_args[64], *stops[64];
    unsigned n_id_args = 0, n_stops = 0, n_new = 0, top_k = 50;
    float temperature = 1.0f, top_p = 0, penalty = 1.0f;
    unsigned long long seed = 0;
    int sampling = 0, greedy = 0, seed_set = 0, ignore_eos = 0, print_ids = 0;
    const char *task = NULL;
    vkf_generate_desc beams = {0}; /* the beam search options given (others: the model's generation config) */
    int c, rc = TOOL_CONTINUE;
    while (rc == TOOL_CONTINUE && (c = tool_getopt(argc, argv, "p:f:n:" TOOL_MODEL_SHORTOPTS, longopts)) != -1) {
        switch (c) {
        case 'p': rc = tool_texts_add(&prompts, optarg, strlen(optarg), prompts.count + 1) == TOOL_OK ? TOOL_CONTINUE : TOOL_FAIL; break;
        case 'f': {
            size_t size;
            char *all = tool_read_all(optarg, &size);
            rc = all && tool_texts_add(&prompts, all, size, prompts.count + 1) == TOOL_OK ? TOOL_CONTINUE : TOOL_FAIL;
            free(all);
            break;
        }
        case OPT_PENALTY:
            if (!tool_parse_float(optarg, &penalty) || !(penalty > 0))
                rc = tool_usage_error("--repetition-penalty takes a number > 0, not '%s'", optarg);
            break;
        case OPT_STOP:
            if (!*optarg) rc = tool_usage_error("--stop takes a non-empty string");
            else if (n_stops == 64) rc = tool_usage_error("at most 64 stop strings");
            else stops[n_stops++] = optarg;
            break;
        case OPT_IDS:
            if (n_id_args == 64) rc = tool_usage_error("at most 64 prompts");
            else id_args[n_id_args++] = optarg;
            break;
        case 'n':
            if (!tool_parse_u32(optarg, 1, 1u << 20, &n_new)) rc = tool_usage_error("-n takes 1 to 1048576 tokens, not '%s'", optarg);
            break;
        case OPT_GREEDY: greedy = 1; break;
        case OPT_TEMP:
            if (!tool_parse_float(optarg, &temperature) || temperature < 0)
                rc = tool_usage_error("--temperature takes a number >= 0, not '%s'", optarg);
            sampling = 1;
            break;
        case OPT_TOPK:
            if (!tool_parse_u32(optarg, 0, 1u << 24, &top_k)) rc = tool_usage_error("--top-k takes a count, not '%s'", optarg);
            sampling = 1;
            break;
        case OPT_TOPP:
            if (!tool_parse_float(optarg, &top_p) || !(top_p > 0 && top_p <= 1))
                rc = tool_usage_error("--top-p takes a probability in (0, 1], not '%s'", optarg);
            sampling = 1;
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-') rc = tool_usage_error("--seed takes a number, not '%s'", optarg);
            seed_set = sampling = 1;
            break;
        }
        case OPT_IGNORE_EOS: ignore_eos = 1; break;
        case OPT_PRINT_IDS: print_ids = 1; break;
        case OPT_BEAMS:
            if (!tool_parse_u32(optarg, 1, 64, &beams.num_beams)) rc = tool_usage_error("--num-beams takes 1 to 64, not '%s'", optarg);
            beams.explicit_fields |= VKF_GEN_NUM_BEAMS;
            break;
        case OPT_LP:
            if (!tool_parse_float(optarg, &beams.length_penalty) || !isfinite(beams.length_penalty))
                rc = tool_usage_error("--length-penalty takes a number, not '%s'", optarg);
            beams.explicit_fields |= VKF_GEN_LENGTH_PENALTY;
            break;
        case OPT_NGRAM:
            if (!tool_parse_u32(optarg, 0, 1u << 16, &beams.no_repeat_ngram_size))
                rc = tool_usage_error("--no-repeat-ngram-size takes a size (0: off), not '%s'", optarg);
            beams.explicit_fields |= VKF_GEN_NO_REPEAT_NGRAM;
            break;
        case OPT_MIN_NEW:
            if (!tool_parse_u32(optarg, 0, 1u << 20, &beams.min_new_tokens))
                rc = tool_usage_error("--min-new-tokens takes a count, not '%s'", optarg);
            beams.explicit_fields |= VKF_GEN_MIN_NEW_TOKENS;
            break;
        case OPT_EARLY:
            beams.early_stopping = !strcmp(optarg, "true") ? VKF_EARLY_STOPPING_TRUE : !strcmp(optarg, "false") ? VKF_EARLY_STOPPING_FALSE
                                   : !strcmp(optarg, "never") ? VKF_EARLY_STOPPING_NEVER : VKF_EARLY_STOPPING_DEFAULT;
            if (!beams.early_stopping) rc = tool_usage_error("--early-stopping takes true, false or never, not '%s'", optarg);
            break;
        case OPT_TASK:
            if (strcmp(optarg, "text-generation") && strcmp(optarg, "text2text-generation") && strcmp(optarg, "summarization") &&
                strncmp(optarg, "translation", 11))
                rc = tool_usage_error("--task takes text-generation, text2text-generation, translation or summarization, not '%s'",
                                      optarg);
            task = optarg;
            break;
        default: rc = tool_model_option(c, optarg, &mo, usage);
        }
    }
    if (rc != TOOL_CONTINUE) return tool_texts_free(&prompts), rc;
    if (optind < argc) return tool_texts_free(&prompts), tool_usage_error("unexpected argument '%s' (prompts go after --prompt)", argv[optind]);
    if (prompts.count && n_id_args) return tool_texts_free(&prompts), tool_usage_error("give --prompt / --prompt-file or --prompt-ids, not both");
    if (sampling && greedy) return tool_texts_free(&prompts), tool_usage_error("--greedy and sampling options exclude each other");
    if (sampling && temperature == 0) sampling = 0; /* temperature 0: greedy, as llama.cpp */
    if (!prompts.count && !n_id_args) {
        size_t size;
        char *all = tool_read_all("-", &size);
        if (!all) return TOOL_FAIL;
        while (size && (all[size - 1] == '\n' || all[size - 1] == '\r')) all[--size] = 0; /* the terminal's newline */
        rc = tool_texts_add(&prompts, all, size, 1);
        free(all);
        if (rc != TOOL_OK) return tool_texts_free(&prompts), TOOL_FAIL;
    }
    uint32_t n = prompts.count ? (uint32_t)prompts.count : n_id_args;
    if (n > 64) return tool_texts_free(&prompts), tool_usage_error("at most 64 prompts");
    int32_t *ids[64] = {0};
    uint32_t lens[64] = {0};
    for (uint32_t i = 0; i < n_id_args; i++)
        if (!parse_ids(id_args[i], &ids[i], &lens[i])) {
            for (uint32_t j = 0; j <= i; j++) free(ids[j]);
            tool_texts_free(&prompts);
            return tool_usage_error("--prompt-ids takes token ids like \"464 3290 318\", not '%s'", id_args[i]);
        }
    if (sampling && !seed_set) {
        seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
        if (!mo.quiet) fprintf(stderr, "%s: seed %llu\n", tool_name, seed);
    }

    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    mo.task = task ? task : "text-generation,text2text-generation";
    rc = tool_open_model(&mo, &ctx, &model);
    /* an encoder-decoder answers: its text is new, the prompt is not echoed (HF's text2text pipelines) */
    vkf_model_info info = {0};
    if (rc == TOOL_OK) vkf_model_get_info(model, &info);
    bool answers = rc == TOOL_OK && !strcmp(info.task, "text2text-generation");
    const char *field = !task || !answers ? "generated_text" : !strncmp(task, "translation", 11) ? "translation_text"
                        : !strcmp(task, "summarization") ? "summary_text" : "generated_text";
    stream_state ss = {.stream = n == 1 && !print_ids && mo.out.format == TOOL_TEXT && !n_id_args};
    vkf_generate_desc d = {.max_new_tokens = n_new, .temperature = sampling ? temperature : 0, .top_k = sampling ? top_k : 0,
                           .top_p = sampling ? top_p : 0, .seed = seed, .ignore_eos = ignore_eos, .on_token = on_token,
                           .user = &ss, .repetition_penalty = penalty, .stop_strings = stops, .n_stop_strings = n_stops,
                           .num_beams = beams.num_beams, .length_penalty = beams.length_penalty,
                           .early_stopping = beams.early_stopping, .no_repeat_ngram_size = beams.no_repeat_ngram_size,
                           .min_new_tokens = beams.min_new_tokens, .explicit_fields = beams.explicit_fields, .task = task};
    vkf_generation g[64];
    vkf_session *s = NULL;
    if (rc == TOOL_OK && vkf_session_create(model, n, &s) != VKF_OK) rc = tool_fail("%s", vkf_last_error(ctx));
    if (rc == TOOL_OK && ss.stream && !answers) { /* the prompt, then its continuation as it comes */
        fwrite(prompts.s[0], 1, prompts.n[0], stdout);
        fflush(stdout);
    }
    double t0 = tool_now();
    if (rc == TOOL_OK) {
        t0 = tool_now();
        vkf_status st = n_id_args ? vkf_session_generate_ids(s, (const int32_t *const *)ids, lens, &d, g)
                                  : vkf_session_generate(s, (const char *const *)prompts.s, &d, g);
        if (st != VKF_OK) {
            if (ss.stream) putchar('\n'); /* the prompt's line ends before the message */
            rc = tool_fail("%s", vkf_last_error(ctx));
        }
    }
    if (rc == TOOL_OK) {
        static const char *const reasons[] = {"eos", "max_new_tokens", "context", "callback", "stop_string"};
        uint32_t prompt_tokens = 0, generated = 0;
        for (uint32_t i = 0; i < n; i++) {
            prompt_tokens += g[i].prompt_tokens, generated += g[i].n_ids;
            /* the prompt as text: as given, or its ids decoded */
            char *from_ids = prompts.count ? NULL : decoded(model, ids[i], lens[i]);
            const char *prompt = answers ? "" : prompts.count ? prompts.s[i] : from_ids ? from_ids : "";
            size_t pl = answers ? 0 : prompts.count ? prompts.n[i] : strlen(prompt);
            if (mo.out.format != TOOL_TEXT) {
                cJSON *o = cJSON_CreateObject();
                /* HF's pipeline: the prompt and its continuation (return_full_text) */
                size_t tl = g[i].text ? g[i].text_len : 0;
                char *full = malloc(pl + tl + 1);
                if (full) {
                    memcpy(full, prompt, pl);
                    memcpy(full + pl, g[i].text ? g[i].text : "", tl);
                    full[pl + tl] = 0;
                }
                cJSON_AddStringToObject(o, field, full ? full : "");
                free(full);
                cJSON_AddItemToObject(o, "generated_ids", cJSON_CreateIntArray((const int *)g[i].ids, (int)g[i].n_ids));
                cJSON_AddNumberToObject(o, "prompt_tokens", g[i].prompt_tokens);
                cJSON_AddStringToObject(o, "stop", reasons[g[i].stop]);
                cJSON *list = cJSON_CreateArray(); /* HF: a list of sequences per prompt */
                cJSON_AddItemToArray(list, o);
                tool_emit(&mo.out, list);
            } else if (print_ids || !g[i].text) {
                for (uint32_t j = 0; j < g[i].n_ids; j++) printf("%s%d", j ? " " : "", g[i].ids[j]);
                printf("\n");
            } else if (ss.stream) {
                printf("\n");
            } else {
                fwrite(prompt, 1, pl, stdout);
                fwrite(g[i].text, 1, g[i].text_len, stdout);
                putchar('\n');
            }
            vkf_free(from_ids);
        }
        if (mo.out.format == TOOL_JSON) tool_emit_end(&mo.out);
        if (!mo.quiet) {
            double prefill = ss.tokens ? ss.first - t0 : tool_now() - t0, gen = ss.last - ss.first;
            uint32_t steps = generated > n ? generated - n : 0; /* tokens after each prompt's first */
            fprintf(stderr, "%s: load %.0f ms, prompt %u tokens in %.1f ms (%.1f tokens/s), generated %u tokens (%.1f tokens/s)\n",
                    tool_name, mo.load_s * 1e3, prompt_tokens, prefill * 1e3, prefill > 0 ? prompt_tokens / prefill : 0.0,
                    generated, gen > 0 ? steps / gen : 0.0);
        }
        vkf_generation_free(g, n);
    }
    for (uint32_t i = 0; i < n_id_args; i++) free(ids[i]);
    vkf_session_destroy(s);
    tool_texts_free(&prompts);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
