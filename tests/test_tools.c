/* The command-line tools as one family, used as a user uses them: one JSON
 * shape per task (--json and --jsonl), results alone on standard output,
 * one timing line on standard error, progress only on a terminal, inputs
 * from files streamed a batch at a time, models found in the local Hugging
 * Face cache, and the bugs found by using every tool that way. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MINILM TMINILM
#define VIT VKF_TEST_DATA "/golden/vit"
#define CATS VKF_REPO_DIR "/models/images/000000039769.png"
#define DOG VKF_REPO_DIR "/models/images/dog.jpg"
#define GPT2_TEXT VKF_TEST_DATA "/gpt2/text"
#define CLIP VKF_TEST_DATA "/clip/zero_shot"
#define TOKBERT VKF_TEST_DATA "/tokenizers/bert-base-uncased"
#define SPEECH VKF_TEST_DATA "/speech"
#define AUDIO VKF_TEST_DATA "/audio"


/* "vkformer-embed" of a tool's path (the bundle's tests name bare tools on PATH). */
static const char *tool_of(const char *bin)
{
    const char *slash = strrchr(bin, '/');
    return slash ? slash + 1 : bin;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static size_t count_str(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* ---- one JSON shape per task ------------------------------------------------------------ */

typedef enum shape { SCORES, VECTOR, MASKS, GENERATED, ENCODING, OUTPUT, ZERO_SHOT, RERANKED, TRANSCRIBED } shape;

static void check_element(const cJSON *e, shape k, const char *what)
{
    switch (k) {
    case SCORES: /* HF's [{label, score}, ...] */
        cr_assert(cJSON_IsArray(e) && cJSON_GetArraySize(e) > 0, "%s: not a list of scores", what);
        for (const cJSON *x = e->child; x; x = x->next)
            cr_assert(cJSON_IsString(cJSON_GetObjectItem(x, "label")) && cJSON_IsNumber(cJSON_GetObjectItem(x, "score")), "%s", what);
        break;
    case VECTOR:
        cr_assert(cJSON_IsArray(e) && cJSON_IsNumber(e->child), "%s: not a vector", what);
        break;
    case MASKS: /* one mask: HF's list of {score, token, token_str, sequence}; several: a list of those */
        cr_assert(cJSON_IsArray(e) && e->child, "%s", what);
        const cJSON *first = cJSON_IsArray(e->child) ? e->child->child : e->child;
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(first, "token_str")) && cJSON_IsString(cJSON_GetObjectItem(first, "sequence")),
                  "%s", what);
        break;
    case GENERATED: /* HF: [{generated_text}] per prompt */
        cr_assert(cJSON_IsArray(e) && cJSON_GetArraySize(e) == 1, "%s", what);
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(e->child, "generated_text")), "%s", what);
        break;
    case ENCODING:
        cr_assert(cJSON_IsArray(cJSON_GetObjectItem(e, "input_ids")) && cJSON_IsArray(cJSON_GetObjectItem(e, "offset_mapping")), "%s",
                  what);
        break;
    case ZERO_SHOT: /* HF's zero-shot-classification: {sequence, labels, scores} */
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(e, "sequence")) && cJSON_IsArray(cJSON_GetObjectItem(e, "labels")) &&
                      cJSON_GetArraySize(cJSON_GetObjectItem(e, "labels")) == cJSON_GetArraySize(cJSON_GetObjectItem(e, "scores")),
                  "%s", what);
        break;
    case RERANKED: /* text-embeddings-inference's /rerank: {index, score[, text]} per document */
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(e, "index")) && cJSON_IsNumber(cJSON_GetObjectItem(e, "score")), "%s", what);
        break;
    case TRANSCRIBED: /* HF's automatic-speech-recognition: {text[, chunks: [{text, timestamp: [start, end]}]]} */
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(e, "text")), "%s", what);
        for (const cJSON *c = cJSON_GetObjectItem(e, "chunks") ? cJSON_GetObjectItem(e, "chunks")->child : NULL; c; c = c->next)
            cr_assert(cJSON_IsString(cJSON_GetObjectItem(c, "text")) && cJSON_GetArraySize(cJSON_GetObjectItem(c, "timestamp")) == 2, "%s", what);
        break;
    case OUTPUT:
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(e, "name")) && cJSON_IsArray(cJSON_GetObjectItem(e, "shape")), "%s", what);
        break;
    }
}

/* --json: an array of n elements of the task's shape, one per line; --jsonl:
 * the same elements, a line each; -q: nothing on stderr; without -q one
 * timing line on stderr and the same results on stdout. */
static void check_tool(const char *bin, const char *args, const char *in, size_t n, shape k)
{
    char a[4096], what[4200];
    snprintf(what, sizeof what, "%s %s", tool_of(bin), args);
    size_t in_len = in ? strlen(in) : 0;
    snprintf(a, sizeof a, "-q --json %s", args);
    tcli_result *r = tcli_run(bin, a, in, in_len);
    cr_assert_eq(r->status, 0, "%s: %s", what, r->err);
    cr_assert_str_eq(r->err, "", "%s -q: stderr is not empty", what);
    cJSON *all = cJSON_Parse(r->out);
    cr_assert(cJSON_IsArray(all), "%s --json: not a JSON array:\n%s", what, r->out);
    cr_assert_eq((size_t)cJSON_GetArraySize(all), n, "%s --json: %d elements for %zu inputs", what, cJSON_GetArraySize(all), n);
    cr_assert_eq(count_lines(r->out), n + 2, "%s --json: one element per line:\n%s", what, r->out);
    char *json_out = strdup(r->out);
    for (const cJSON *e = all->child; e; e = e->next) check_element(e, k, what);
    snprintf(a, sizeof a, "-q --jsonl %s", args);
    r = tcli_run(bin, a, in, in_len);
    cr_assert_eq(r->status, 0, "%s --jsonl: %s", what, r->err);
    cr_assert_eq(count_lines(r->out), n, "%s --jsonl: %zu lines for %zu inputs", what, count_lines(r->out), n);
    const char *line = r->out;
    for (const cJSON *e = all->child; e; e = e->next) {
        char *want = cJSON_PrintUnformatted(e);
        size_t len = strcspn(line, "\n");
        cr_assert(len == strlen(want) && !memcmp(line, want, len), "%s: --jsonl line differs from --json's element:\n%.*s\n%s", what,
                  (int)len, line, want);
        free(want);
        line += len + 1;
    }
    /* without -q: the same results, one timing line on stderr */
    snprintf(a, sizeof a, "--json %s", args);
    r = tcli_run(bin, a, in, in_len);
    cr_assert_eq(r->status, 0, "%s: %s", what, r->err);
    cr_assert_str_eq(r->out, json_out, "%s: stdout changes without -q", what);
    cr_assert_eq(count_str(r->err, ": load "), 1, "%s: one timing line on stderr:\n%s", what, r->err);
    cr_assert(!strchr(r->err, '\r'), "%s: a progress line into a pipe:\n%s", what, r->err);
    free(json_out);
    cJSON_Delete(all);
}

Test(tools, one_json_shape_per_task, .timeout = 900)
{
    char tc[256], mlm[256], tmp[256], args[2048];
    tvocab_model(tc, sizeof tc, VKF_TEST_DATA "/golden/bert", 500);
    tvocab_model(mlm, sizeof mlm, VKF_TEST_DATA "/text/bert_mlm", 300);
    ttmpdir_create(tmp, sizeof tmp, "tools-run");
    check_tool(VKF_CLASSIFY_BIN, "--top 2 " CATS " " DOG, NULL, 2, SCORES);
    check_tool(VKF_CLASSIFY_BIN, "--top 2 " CATS, NULL, 1, SCORES); /* one input: still a list of one */
    snprintf(args, sizeof args, "-m %s --top 2 'a b' 'c d' e", tc);
    check_tool(VKF_CLASSIFY_BIN, args, NULL, 3, SCORES);
    snprintf(args, sizeof args, "-m %s --top 1 --batch-size 2", tc);
    check_tool(VKF_CLASSIFY_BIN, args, "a\nb\n\nc\n", 3, SCORES);
    if (tminilm()) {
        check_tool(VKF_EMBED_BIN, "-m " MINILM " 'A man is eating food.' 'A man is eating a piece of bread.'", NULL, 2, VECTOR);
        check_tool(VKF_EMBED_BIN, "-m " MINILM " --similarity a b c", NULL, 3, VECTOR);
    }
    snprintf(args, sizeof args, "-m %s --file -", tc);
    check_tool(VKF_EMBED_BIN, args, "a b\nc\n", 2, VECTOR);
    check_tool(VKF_EMBED_BIN, "-m " CLIP " --precision fp32 --images " CLIP "/photo0.png", NULL, 1, VECTOR);
    snprintf(args, sizeof args, "-m %s 'a [MASK] c' '[MASK] b [MASK]'", mlm);
    check_tool(VKF_FILL_MASK_BIN, args, NULL, 2, MASKS);
    snprintf(args, sizeof args, "-m %s --file -", mlm);
    check_tool(VKF_FILL_MASK_BIN, args, "a [MASK]\n", 1, MASKS);
    check_tool(VKF_ZERO_SHOT_BIN, "-m " CLIP " --labels cat,dog " CLIP "/photo0.png " CLIP "/photo1.png", NULL, 2, SCORES);
    check_tool(VKF_ZERO_SHOT_BIN, "-m " CLIP " --labels cat,dog " CLIP "/photo0.png", NULL, 1, SCORES);
    check_tool(VKF_CLASSIFY_BIN, "-m " VKF_TEST_DATA "/zeroshot/bert_nli --labels 'sports, politics' 'The team won.' 'A vote'", NULL, 2,
               ZERO_SHOT);
    check_tool(VKF_CLASSIFY_BIN, "-m " VKF_TEST_DATA "/zeroshot/roberta_nli --labels-file - --multi-label the", "a\nb c\n", 1, ZERO_SHOT);
    check_tool(VKF_RERANK_BIN, "-m " VKF_TEST_DATA "/zeroshot/cross_encoder -Q q a 'b c' d", NULL, 3, RERANKED);
    check_tool(VKF_RERANK_BIN, "-m " VKF_TEST_DATA "/zeroshot/cross_encoder -Q q --top-k 1 --return-text", "a\nb\n", 1, RERANKED);
    check_tool(VKF_GENERATE_BIN, "-m " GPT2_TEXT " -n 3 --ignore-eos -p 'The café' -p Hello", NULL, 2, GENERATED);
    check_tool(VKF_GENERATE_BIN, "-m " GPT2_TEXT " -n 3 --ignore-eos", "The café\n", 1, GENERATED);
    check_tool(VKF_TOKENIZE_BIN, "-m " TOKBERT " 'Hello world' café", NULL, 2, ENCODING);
    check_tool(VKF_TOKENIZE_BIN, "-m " TOKBERT " --file -", "one\ntwo\n\nthree\n", 4, ENCODING);
    check_tool(VKF_TRANSCRIBE_BIN, "-m " SPEECH "/w2v_base_ctc " AUDIO "/tones16k.wav " AUDIO "/tones44k.flac", NULL, 2, TRANSCRIBED);
    check_tool(VKF_TRANSCRIBE_BIN, "-m " SPEECH "/w2v_base_ctc -c 0.4 --timestamps " AUDIO "/tones16k.wav", NULL, 1, TRANSCRIBED);
    check_tool(VKF_CLASSIFY_BIN, "-m " SPEECH "/hubert_cls -k 2 " AUDIO "/tones16k.wav " AUDIO "/tones48k.ogg", NULL, 2, SCORES);
    snprintf(args, sizeof args, "-m " VIT " -i pixel_values=" VKF_TEST_DATA "/npy/vit_pixel_values.npy -o logits=%s/l.npy -o pooled=%s/p.npy",
             tmp, tmp);
    check_tool(VKF_RUN_BIN, args, NULL, 2, OUTPUT);
    ttmpdir_remove(tc);
    ttmpdir_remove(mlm);
    ttmpdir_remove(tmp);
}

/* ---- progress: on a terminal only ------------------------------------------------------ */

Test(tools, progress_only_on_a_terminal, .timeout = 600)
{
    if (!tminilm()) cr_skip_test("all-MiniLM-L6-v2 left out: the load progress needs a model over 64 MiB");
    char dir[256], path[400], args[600];
    ttmpdir_create(dir, sizeof dir, "tools-progress");
    snprintf(path, sizeof path, "%s/texts.txt", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 24; i++) fprintf(f, "sentence number %d\n", i);
    fclose(f);
    snprintf(args, sizeof args, "-m " MINILM " --similarity --batch-size 8 --file %s", path);
    /* on a terminal: weights loading and texts done, erased before the results */
    tcli_result *r = tcli_run_tty(VKF_EMBED_BIN, args);
    cr_assert_eq(r->status, 0, "%s", r->out);
    cr_assert(strstr(r->out, "loading weights: 100%"), "no load progress on a terminal:\n%.2000s", r->out);
    cr_assert(strstr(r->out, "embedded: 24 texts\r\033[K 1.0000"), "no batch progress, or results over it:\n%.3000s", r->out);
    cr_assert(strstr(r->out, "vkformer-embed: load "), "%.2000s", r->out);
    /* into pipes: the same results, no progress */
    r = tcli_run(VKF_EMBED_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_eq(count_lines(r->out), 24);
    cr_assert(!strstr(r->err, "loading weights") && !strstr(r->err, "embedded:") && !strchr(r->err, '\r'), "%s", r->err);
    /* -q on a terminal: nothing but results */
    snprintf(args, sizeof args, "-q -m " MINILM " --similarity --batch-size 8 --file %s", path);
    r = tcli_run_tty(VKF_EMBED_BIN, args);
    cr_assert(!strstr(r->out, "loading") && !strstr(r->out, "embedded:") && !strstr(r->out, ": load "), "%.2000s", r->out);
    ttmpdir_remove(dir);
}

/* ---- batches from files stream -------------------------------------------------------- */

/* Reads from fd until `lines` newlines came or the timeout; returns the lines seen. */
static size_t read_lines(int fd, char *buf, size_t cap, size_t *len, size_t lines, int timeout_ms)
{
    while (count_lines(buf) < lines) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0) break;
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);
        if (n <= 0) break;
        *len += (size_t)n;
        buf[*len] = 0;
    }
    return count_lines(buf);
}

Test(tools, file_input_streams_a_batch_at_a_time, .timeout = 600)
{
    char tc[256];
    tvocab_model(tc, sizeof tc, VKF_TEST_DATA "/golden/bert", 500);
    int to[2], from[2];
    cr_assert_eq(pipe(to), 0);
    cr_assert_eq(pipe(from), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(to[0], 0), dup2(from[1], 1);
        close(to[1]), close(from[0]);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execlp(VKF_EMBED_BIN, "vkformer-embed", "-q", "-m", tc, "--batch-size", "2", "--file", "-", (char *)NULL);
        _exit(127);
    }
    close(to[0]), close(from[1]);
    static char out[1 << 20];
    size_t len = 0;
    out[0] = 0;
    /* two lines make a batch: its results come while standard input is still open */
    cr_assert_eq(write(to[1], "first text\nsecond text\n", 23), 23);
    size_t got = read_lines(from[0], out, sizeof out, &len, 2, 240000);
    if (got < 2) kill(pid, SIGKILL);
    cr_assert_eq(got, 2, "no output before the end of the input (%zu lines)", got);
    cr_assert_eq(write(to[1], "third text\n", 11), 11);
    close(to[1]);
    got = read_lines(from[0], out, sizeof out, &len, 3, 240000);
    close(from[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit %d", WEXITSTATUS(st));
    cr_assert_eq(got, 3);
    ttmpdir_remove(tc);
}

/* ---- the bugs found by using the tools ------------------------------------------------- */

/* The golden BERT's safetensors: all its bytes, and its header parsed. */
typedef struct golden_st {
    uint8_t *all;
    size_t size;
    uint64_t header_len;
    cJSON *header;
} golden_st;

static golden_st golden_bert_st(void)
{
    golden_st g;
    FILE *f = fopen(VKF_TEST_DATA "/golden/bert/model.safetensors", "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    g.size = (size_t)ftell(f);
    rewind(f);
    g.all = malloc(g.size);
    cr_assert_eq(fread(g.all, 1, g.size, f), g.size);
    fclose(f);
    memcpy(&g.header_len, g.all, 8);
    char *hdr = strndup((char *)g.all + 8, g.header_len);
    g.header = cJSON_Parse(hdr);
    cr_assert_not_null(g.header);
    free(hdr);
    return g;
}

/* A copy of the golden BERT classifier whose pooler bias is stored as I32:
 * it fails when that weight is converted, after everything before it. */
static void broken_weights(const char *dir)
{
    char path[400];
    golden_st g = golden_bert_st();
    cJSON *h = g.header;
    cJSON *t = cJSON_GetObjectItem(h, "bert.pooler.dense.bias");
    cr_assert_not_null(t);
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString("I32"));
    char *nh = cJSON_PrintUnformatted(h);
    uint64_t nl = strlen(nh);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fwrite(&nl, 8, 1, f);
    fwrite(nh, 1, nl, f);
    fwrite(g.all + 8 + g.header_len, 1, g.size - 8 - g.header_len, f);
    fclose(f);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp " VKF_TEST_DATA "/golden/bert/config.json %s/ && cp %s/../vocab.txt %s/../tokenizer_config.json %s/", dir,
             dir, dir, dir);
    cr_assert_eq(system(cmd), 0);
    free(nh), free(g.all);
    cJSON_Delete(h);
}

/* dir/headless: the golden BERT without its classifier (a BertModel: feature-extraction). */
static void headless_bert(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/headless", dir);
    cr_assert_eq(mkdir(out, 0755), 0);
    golden_st g = golden_bert_st();
    cJSON *h = g.header, *nh = cJSON_CreateObject();
    uint8_t *data = malloc(g.size);
    uint64_t at = 0;
    for (cJSON *t = h->child; t; t = t->next) { /* the data of every kept tensor, packed again */
        if (!strncmp(t->string, "classifier.", 11) || !strcmp(t->string, "__metadata__")) continue;
        cJSON *off = cJSON_GetObjectItem(t, "data_offsets");
        uint64_t a = (uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble, b = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        memcpy(data + at, g.all + 8 + g.header_len + a, b - a);
        cJSON *c = cJSON_Duplicate(t, 1);
        cJSON_ReplaceItemInObject(c, "data_offsets", cJSON_CreateDoubleArray((double[]){(double)at, (double)(at + b - a)}, 2));
        cJSON_AddItemToObject(nh, t->string, c);
        at += b - a;
    }
    char *text = cJSON_PrintUnformatted(nh), path[600];
    uint64_t tl = strlen(text);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    FILE *f = fopen(path, "wb");
    fwrite(&tl, 8, 1, f), fwrite(text, 1, tl, f), fwrite(data, 1, at, f);
    fclose(f);
    free(text), free(data), free(g.all);
    cJSON_Delete(h), cJSON_Delete(nh);
    /* config.json naming a BertModel, and the vocabulary of dir */
    cJSON *cfg = tread_json(VKF_TEST_DATA "/golden/bert/config.json");
    cJSON_ReplaceItemInObject(cfg, "architectures", cJSON_CreateStringArray((const char *[]){"BertModel"}, 1));
    text = cJSON_Print(cfg);
    snprintf(path, sizeof path, "%s/config.json", out);
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    cJSON_Delete(cfg);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp %s/vocab.txt %s/tokenizer_config.json %s/", dir, dir, out);
    cr_assert_eq(system(cmd), 0);
}

Test(tools, bugs_found_using_them, .timeout = 600)
{
    char tc[256], args[2048], path[400], headless[400];
    tvocab_model(tc, sizeof tc, VKF_TEST_DATA "/golden/bert", 500);
    headless_bert(tc, headless, sizeof headless);
    /* a model that cannot generate: no prompt echoed before the error */
    snprintf(args, sizeof args, "-m %s -p hi", headless);
    tcli_result *r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert_str_eq(r->out, "", "the prompt was printed before the error");
    cr_assert(strstr(r->err, "this bert checkpoint does feature-extraction, not text-generation"), "%s", r->err);
    /* --dump-logits on a text classifier writes every text's logits (class order) */
    snprintf(path, sizeof path, "%s/logits.bin", tc);
    snprintf(args, sizeof args, "-q -m %s --batch-size 2 --top 1 --dump-logits %s 'a b c' 'd e' f", tc, path);
    r = tcli_run(VKF_CLASSIFY_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    float *dumped = tread_file(path, 3 * 3 * 4);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    cr_assert_eq(ftell(f), 36, "3 texts x 3 labels x 4 bytes");
    fclose(f);
    vkf_context *ctx = tctx_create(NULL);
    vkf_model *m = tload_model(ctx, tc, VKF_FP32);
    vkf_class_score sc[9];
    cr_assert_eq(vkf_classify_texts(m, (const char *const[]){"a b c", "d e", "f"}, NULL, 3, sc, 3), VKF_OK);
    for (int i = 0; i < 9; i++) cr_assert_float_eq(dumped[(i / 3) * 3 + sc[i].index], sc[i].logit, 1e-6, "logit %d", i);
    free(dumped);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    /* a BERT without a classification head is named as what it is, with --file too */
    snprintf(args, sizeof args, "-m %s hello", headless);
    r = tcli_run(VKF_CLASSIFY_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "this bert checkpoint does feature-extraction, not image-classification or text-classification") &&
                  !strstr(r->err, "ViT"), "%s", r->err);
    snprintf(args, sizeof args, "-m %s --file -", headless);
    r = tcli_run(VKF_CLASSIFY_BIN, args, "hello\n", 6);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "does feature-extraction, not text-classification") && !strstr(r->err, "image model"), "%s", r->err);
    /* the truncation warning names the line of the file, not the index in a batch */
    snprintf(path, sizeof path, "%s/texts.txt", tc);
    f = fopen(path, "w");
    fputs("a\nb\n\nc\nd\n", f);
    for (int i = 0; i < 100; i++) fputs("e ", f); /* line 6: 100 tokens, the model has 64 positions */
    fputs("\nf\n", f);
    fclose(f);
    snprintf(args, sizeof args, "-m %s --batch-size 2 --top 1 --file %s", tc, path);
    r = tcli_run(VKF_CLASSIFY_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strstr(r->err, "vkformer-classify: warning: line 6: 102 tokens truncated to 64"), "%s", r->err);
    /* fill-mask on a checkpoint without an MLM head refuses before reading a weight */
    char broken[500];
    snprintf(broken, sizeof broken, "%s/broken", tc);
    cr_assert_eq(mkdir(broken, 0755), 0);
    broken_weights(broken);
    snprintf(args, sizeof args, "-m %s 'a [MASK]'", broken);
    r = tcli_run(VKF_FILL_MASK_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "does text-classification, not fill-mask") && !strstr(r->err, "I32"), "%s", r->err);
    snprintf(args, sizeof args, "-m %s 'a b'", broken); /* the broken weight is real: classifying reads it */
    r = tcli_run(VKF_CLASSIFY_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "bert.pooler.dense.bias") && strstr(r->err, "I32"), "%s", r->err);
    /* an unknown option or a missing value: one message and the hint, nothing else */
    static const char *const tools[] = {VKF_INFO_BIN, VKF_CLASSIFY_BIN, VKF_TOKENIZE_BIN, VKF_EMBED_BIN, VKF_FILL_MASK_BIN,
                                        VKF_RUN_BIN, VKF_GENERATE_BIN, VKF_ZERO_SHOT_BIN, VKF_RERANK_BIN};
    for (size_t i = 0; i < BASE_ARRAY_LEN(tools); i++) {
        const char *name = tool_of(tools[i]);
        char want[256];
        r = tcli_run(tools[i], "--bogus", NULL, 0);
        snprintf(want, sizeof want, "%s: unrecognized option '--bogus'\n(see %s --help)\n", name, name);
        cr_assert_eq(r->status, 2);
        cr_assert_str_eq(r->err, want);
        r = tcli_run(tools[i], "--help", NULL, 0);
        cr_assert(r->status == 0 && strstr(r->out, "usage: "), "%s", name);
    }
    r = tcli_run(VKF_CLASSIFY_BIN, "--top", NULL, 0);
    cr_assert_str_eq(r->err, "vkformer-classify: option '--top' needs a value\n(see vkformer-classify --help)\n");
    r = tcli_run(VKF_CLASSIFY_BIN, "-k", NULL, 0);
    cr_assert_str_eq(r->err, "vkformer-classify: option '-k' needs a value\n(see vkformer-classify --help)\n");
    /* --prompt-ids on a model with a tokenizer: the decoded prompt and its continuation */
    r = tcli_run(VKF_GENERATE_BIN, "-q -m " GPT2_TEXT " -n 4 --ignore-eos --prompt 'The café'", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    char want[4096];
    snprintf(want, sizeof want, "%s", r->out);
    r = tcli_run(VKF_GENERATE_BIN, "-q -m " GPT2_TEXT " -n 4 --ignore-eos --prompt-ids '464 40304'", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_str_eq(r->out, want);
    ttmpdir_remove(tc);
}

/* ---- generation options ------------------------------------------------------------------ */

Test(tools, generation_options, .timeout = 300)
{
    /* HF's references: tools/make_generation_refs.py */
    cJSON *o = tread_json(GPT2_TEXT "/options.json");
    /* --stop: the first case ("otine") ends the text inside a token */
    const cJSON *stop = cJSON_GetObjectItem(o, "stops")->child;
    char args[1024], want[4096];
    snprintf(args, sizeof args, "-q -m " GPT2_TEXT " -n 10 --ignore-eos --prompt 'The café' --stop '%s'",
             cJSON_GetObjectItem(stop, "stop_strings")->child->valuestring);
    tcli_result *r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(want, sizeof want, "The café%s\n", cJSON_GetObjectItem(stop, "text")->valuestring);
    cr_assert_str_eq(r->out, want);
    strcat(args, " --stop never --json");
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cJSON *j = cJSON_Parse(r->out);
    cr_assert_str_eq(cJSON_GetObjectItem(j->child->child, "stop")->valuestring, "stop_string", "%s", r->out);
    cJSON_Delete(j);
    /* --repetition-penalty */
    snprintf(args, sizeof args, "-q -m " GPT2_TEXT " -n 10 --ignore-eos --prompt 'The café' --repetition-penalty %g --print-ids",
             cJSON_GetObjectItem(o, "penalty")->valuedouble);
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    size_t n = 0;
    for (const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "penalty_ids"), 1)->child; e; e = e->next)
        n += (size_t)snprintf(want + n, sizeof want - n, "%s%d", n ? " " : "", (int)e->valuedouble);
    snprintf(want + n, sizeof want - n, "\n");
    cr_assert_str_eq(r->out, want);
    /* --prompt-file: the file's text as the prompt */
    char dir[256], path[400];
    ttmpdir_create(dir, sizeof dir, "tools-prompt");
    snprintf(path, sizeof path, "%s/prompt.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("The café", f);
    fclose(f);
    r = tcli_run(VKF_GENERATE_BIN, "-q -m " GPT2_TEXT " -n 4 --ignore-eos --prompt 'The café'", NULL, 0);
    snprintf(want, sizeof want, "%s", r->out);
    snprintf(args, sizeof args, "-q -m " GPT2_TEXT " -n 4 --ignore-eos --prompt-file %s", path);
    r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_str_eq(r->out, want);
    /* bad values */
    const char *bad[] = {"--repetition-penalty 0", "--repetition-penalty x", "--stop ''", "--prompt-file /no/such/file"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(bad); i++) {
        snprintf(args, sizeof args, "-m " GPT2_TEXT " -p a %s", bad[i]);
        r = tcli_run(VKF_GENERATE_BIN, args, NULL, 0);
        cr_assert_neq(r->status, 0, "%s", bad[i]);
        cr_assert(strstr(r->err, "vkformer-generate: "), "%s: %s", bad[i], r->err);
    }
    ttmpdir_remove(dir);
    cJSON_Delete(o);
}

/* ---- models from the local Hugging Face cache ------------------------------------------- */

Test(tools, hub_ids_from_the_local_cache, .timeout = 300)
{
    char home[256], cmd[4096], args[1024];
    ttmpdir_create(home, sizeof home, "tools-hf");
    /* huggingface_hub's layout: blobs, and snapshots of links to them; refs/main names the revision */
    snprintf(cmd, sizeof cmd,
             "set -e; r=%s/hub/models--acme--tiny-vit; mkdir -p $r/blobs $r/refs $r/snapshots/0123abcd $r/snapshots/feedbeef; "
             "for f in config.json model.safetensors; do cp " VIT "/$f $r/blobs/$f.blob; ln -s ../../blobs/$f.blob $r/snapshots/0123abcd/$f; done; "
             "printf 0123abcd > $r/refs/main; "
             "t=%s/hub/models--google-bert--bert-base-uncased; mkdir -p $t/snapshots/1 && cp " TOKBERT "/* $t/snapshots/1/",
             home, home);
    cr_assert_eq(system(cmd), 0);
    snprintf(args, sizeof args, "-q -m acme/tiny-vit --input-tensor " VIT "/pixel_values.bin --top 1");
    char env[512];
    snprintf(env, sizeof env, "HF_HOME=%s HF_HUB_CACHE= " VKF_CLASSIFY_BIN, home);
    tcli_result *r = tcli_run(env, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strstr(r->out, "input 0:"), "%s", r->out);
    /* HF_HUB_CACHE wins over HF_HOME */
    snprintf(env, sizeof env, "HF_HOME=/nonexistent HF_HUB_CACHE=%s/hub " VKF_CLASSIFY_BIN, home);
    r = tcli_run(env, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    /* a tokenizer by id; without refs/main, the only snapshot */
    snprintf(env, sizeof env, "HF_HOME=%s " VKF_TOKENIZE_BIN, home);
    r = tcli_run(env, "-q -m google-bert/bert-base-uncased 'Hello world!'", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_str_eq(r->out, "101 7592 2088 999 102\n");
    /* an id in neither place: the message says where it looked; nothing is downloaded */
    snprintf(env, sizeof env, "HF_HOME=%s " VKF_CLASSIFY_BIN, home);
    r = tcli_run(env, "-m acme/missing", NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "acme/missing: no such file or directory, nor a model in the Hugging Face cache") &&
                  strstr(r->err, "models--acme--missing"), "%s", r->err);
    /* refs/main naming a snapshot that is not there */
    snprintf(cmd, sizeof cmd, "printf gone > %s/hub/models--acme--tiny-vit/refs/main", home);
    cr_assert_eq(system(cmd), 0);
    r = tcli_run(env, "-m acme/tiny-vit", NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "revision gone"), "%s", r->err);
    /* a directory that is not a model says so, and names the models in it */
    snprintf(args, sizeof args, "-m %s/hub", home);
    r = tcli_run(env, args, NULL, 0);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "hub: not a model directory (no config.json); model folders in it: ") && strstr(r->err, "acme/tiny-vit") &&
                  strstr(r->err, "google-bert/bert-base-uncased"), "%s", r->err);
    snprintf(args, sizeof args, "-m %s", VKF_TEST_DATA "/golden");
    r = tcli_run(VKF_CLASSIFY_BIN, args, NULL, 0);
    cr_assert(strstr(r->err, "golden: not a model directory (no config.json); model folders in it: ") && strstr(r->err, "vit"), "%s",
              r->err);
    r = tcli_run(VKF_CLASSIFY_BIN, "-m " VKF_TEST_DATA "/npy", NULL, 0);
    cr_assert(strstr(r->err, "npy: not a model directory (no config.json in it, nor in a folder inside it)"), "%s", r->err);
    ttmpdir_remove(home);
}
