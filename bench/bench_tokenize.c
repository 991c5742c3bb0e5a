/* vkformer-bench tokenize: tokenizer throughput on one thread, MB/s and
 * tokens/s, for a text of many lines (each line one encode call, as a batch
 * of sentences) and for the same text as one string. No GPU involved.
 * tools/bench_hf_tokenize.py times HF `tokenizers` on the same text. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The default tokenizers: tests/data/tokenizers under $VKF_TEST_DATA's parent,
 * the current directory (a source tree) or the executable's parent (a build
 * tree inside it). No source path is compiled in: the bench is installed. */
static const char *tokenizer_data(char *out, size_t size)
{
    const char *env = getenv("VKF_TEST_DATA");
    if (env && *env) {
        snprintf(out, size, "%s/tokenizers", env);
        return out;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *const tries[] = {".", exe[0] ? exe : ".", "..", NULL};
    for (int i = 0; tries[i]; i++) {
        snprintf(out, size, "%s%s/tests/data/tokenizers", tries[i], i == 1 ? "/.." : "");
        if (access(out, R_OK) == 0) return out;
    }
    snprintf(out, size, "tests/data/tokenizers");
    return out;
}

typedef struct lines {
    const char **s;
    size_t *n;
    size_t count;
} lines;

/* Seconds for one pass: every line (or the whole text) encoded, no special tokens. */
static double pass(const vkf_tokenizer *tok, const char *text, size_t size, const lines *ls, bool whole, uint64_t *tokens)
{
    vkf_encode_options opt = {.no_special_tokens = 1};
    uint64_t n = 0;
    double t0 = base_now();
    if (whole) {
        vkf_encoding e;
        if (vkf_tokenizer_encode(tok, text, size, NULL, 0, &opt, &e) != VKF_OK) return -1;
        n = e.length;
        vkf_encoding_free(&e);
    } else {
        for (size_t i = 0; i < ls->count; i++) {
            vkf_encoding e;
            if (vkf_tokenizer_encode(tok, ls->s[i], ls->n[i], NULL, 0, &opt, &e) != VKF_OK) return -1;
            n += e.length;
            vkf_encoding_free(&e);
        }
    }
    *tokens = n;
    return base_now() - t0;
}

int bench_tokenize(const bench_opts *o)
{
    if (!o->text) {
        fprintf(stderr, "vkformer-bench tokenize: --text FILE is required: a large English text, e.g. the King James\n"
                        "Bible from Debian's bible-kjv package: bash tools/bench_text.sh > kjv.txt\n");
        return 2;
    }
    FILE *f = fopen(o->text, "rb");
    if (!f) {
        fprintf(stderr, "vkformer-bench: %s: cannot open\n", o->text);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(text);
        fprintf(stderr, "vkformer-bench: %s: read failed\n", o->text);
        return 1;
    }
    fclose(f);
    text[size] = 0;
    lines ls = {0};
    size_t cap = 0;
    for (size_t at = 0; at < (size_t)size;) {
        const char *nl = memchr(text + at, '\n', (size_t)size - at);
        size_t end = nl ? (size_t)(nl - text) : (size_t)size;
        if (base_grow((void **)&ls.s, &cap, ls.count + 1, sizeof *ls.s)) {
            size_t c2 = ls.count;
            ls.n = realloc(ls.n, (cap ? cap : 1) * sizeof *ls.n);
            ls.s[c2] = text + at;
            ls.n[c2] = end - at;
            ls.count++;
        }
        at = end + 1;
    }
    /* default: WordPiece, byte-level BPE, then T5's Unigram and a Llama-style
     * SentencePiece BPE with byte fallback, each as tokenizer.json and .model */
    static const char *const defaults[] = {"bert-base-uncased", "gpt2", "spm/t5-json", "spm/t5", "spm/bpe-json", "spm/bpe"};
    enum { N_DEFAULT = sizeof defaults / sizeof *defaults };
    const char *dirs[N_DEFAULT] = {o->model};
    char paths[N_DEFAULT][512];
    int n_dirs = 1;
    if (!o->model) {
        char data[4200];
        tokenizer_data(data, sizeof data);
        for (n_dirs = 0; n_dirs < N_DEFAULT; n_dirs++) {
            snprintf(paths[n_dirs], sizeof paths[n_dirs], "%s/%s", data, defaults[n_dirs]);
            dirs[n_dirs] = paths[n_dirs];
        }
    }
    cJSON *rows = cJSON_CreateArray();
    if (!o->json)
        printf("text: %s, %.2f MB, %zu lines; one thread, median of %d passes after %d warm-up\n\n"
               "%-28s %-7s %10s %12s %10s %10s\n", o->text, size / 1e6, ls.count, o->repeat, o->warmup, "tokenizer", "input",
               "MB/s", "tokens/s", "tokens", "ms");
    int rc = 0;
    for (int k = 0; k < n_dirs && rc == 0; k++) {
        vkf_tokenizer *tok;
        double t0 = base_now();
        if (vkf_tokenizer_load(dirs[k], &tok) != VKF_OK) {
            fprintf(stderr, "vkformer-bench: %s\n", vkf_last_error(NULL));
            rc = 1;
            break;
        }
        double load_s = base_now() - t0;
        const char *name = o->model ? dirs[k] : defaults[k];
        if (o->model && strrchr(name, '/') && strrchr(name, '/')[1]) name = strrchr(name, '/') + 1;
        for (int whole = 0; whole < 2 && rc == 0; whole++) {
            uint64_t tokens = 0;
            double *t = calloc((size_t)o->repeat, sizeof *t);
            for (int r = 0; r < o->warmup + o->repeat && rc == 0; r++) {
                double s = pass(tok, text, (size_t)size, &ls, whole, &tokens);
                if (s < 0) {
                    fprintf(stderr, "vkformer-bench: %s\n", vkf_last_error(NULL));
                    rc = 1;
                } else if (r >= o->warmup) {
                    t[r - o->warmup] = s;
                }
            }
            double med = rc ? 0 : bench_median(t, o->repeat);
            free(t);
            if (rc) break;
            double mbs = size / 1e6 / med, tps = (double)tokens / med;
            if (o->json) {
                cJSON *row = cJSON_CreateObject();
                cJSON_AddStringToObject(row, "tokenizer", name);
                cJSON_AddStringToObject(row, "input", whole ? "whole" : "lines");
                cJSON_AddNumberToObject(row, "mb_per_s", mbs);
                cJSON_AddNumberToObject(row, "tokens_per_s", tps);
                cJSON_AddNumberToObject(row, "tokens", (double)tokens);
                cJSON_AddNumberToObject(row, "ms", med * 1e3);
                cJSON_AddNumberToObject(row, "load_ms", load_s * 1e3);
                cJSON_AddItemToArray(rows, row);
            } else {
                printf("%-28s %-7s %10.2f %12.0f %10llu %10.1f\n", name, whole ? "whole" : "lines", mbs, tps,
                       (unsigned long long)tokens, med * 1e3);
            }
        }
        if (!o->json) printf("%-28s load %.1f ms\n", name, load_s * 1e3);
        vkf_tokenizer_destroy(tok);
    }
    if (o->json && rc == 0) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "text", o->text);
        cJSON_AddNumberToObject(root, "bytes", (double)size);
        cJSON_AddNumberToObject(root, "lines", (double)ls.count);
        cJSON_AddItemToObject(root, "rows", rows);
        rows = NULL;
        char *s = cJSON_Print(root);
        puts(s);
        free(s);
        cJSON_Delete(root);
    }
    cJSON_Delete(rows);
    free(ls.s);
    free(ls.n);
    free(text);
    return rc;
}
