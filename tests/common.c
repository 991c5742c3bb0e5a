#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <cjson/cJSON.h>

#include "io/io.h"
#include "text/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint32_t validation_messages;
static char captured[1 << 16];
static size_t captured_len;

static void capture_log(void *user, vkf_log_level level, const char *message)
{
    (void)user;
    bool from_layer = strncmp(message, "vulkan [", 8) == 0;
    if (from_layer && level <= VKF_LOG_WARN) validation_messages++;
    if (level <= VKF_LOG_WARN) fprintf(stderr, "[%s] %s\n", level == VKF_LOG_ERROR ? "error" : "warn", message);
    size_t n = strlen(message);
    if (captured_len + n + 2 < sizeof captured) {
        memcpy(captured + captured_len, message, n);
        captured_len += n;
        captured[captured_len++] = '\n';
        captured[captured_len] = 0;
    }
}

uint32_t tlog_validation_messages(void) { return validation_messages; }
bool tlog_contains(const char *needle) { return strstr(captured, needle) != NULL; }
void tlog_reset(void)
{
    captured_len = 0;
    captured[0] = 0;
    validation_messages = 0;
}

const char *tcaps(void)
{
    const char *c = getenv("VKF_TEST_CAPS");
    return c && *c ? c : NULL;
}

vkf_context *tctx_create_desc(vkf_context_desc desc)
{
    desc.validation = VKF_ON;
    if (!desc.pipeline_cache) desc.pipeline_cache = VKF_OFF;
    desc.log_fn = capture_log;
    desc.log_level = VKF_LOG_INFO + 1;
    vkf_context *ctx = NULL;
    vkf_status s = vkf_context_create(&desc, &ctx);
    cr_assert_eq(s, VKF_OK, "vkf_context_create: %s", vkf_last_error(NULL));
    return ctx;
}

vkf_context *tctx_create(const char *caps)
{
    return tctx_create_desc((vkf_context_desc){.caps_override = caps});
}

void tctx_destroy(vkf_context *ctx)
{
    vkf_context_destroy(ctx);
    cr_assert_eq(validation_messages, 0, "the validation layer reported %u message(s)", validation_messages);
}

double tref_act(op_act act, double x)
{
    switch (act) {
    case OP_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case OP_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / TEST_PI) * (x + 0.044715 * x * x * x)));
    case OP_ACT_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
    case OP_ACT_TANH: return tanh(x);
    case OP_ACT_RELU: return x > 0 ? x : 0;
    case OP_ACT_SILU: return x / (1.0 + exp(-x));
    default: return x;
    }
}

double nmse_f32(const float *got, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        if (!isfinite(got[i])) return INFINITY;
        num += d * d;
        den += ref[i] * ref[i];
    }
    /* Floor: a reference whose RMS is below 0.01 (e.g. one gelu(-7) value) is
     * judged by absolute error instead of relative error. */
    double floor = (double)n * 1e-4;
    return num / (den > floor ? den : floor);
}

double max_abs_diff_f32(const float *got, const float *ref, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

double max_abs_diff(const float *got, const double *ref, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

uint64_t trand_u64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

float trand_uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((trand_u64(s) >> 40) * (1.0 / 16777216.0));
}

void trand_fill(uint64_t *s, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = trand_uniform(s, lo, hi);
}

void tround(float *x, size_t n, op_dtype t)
{
    if (t != OP_F16) return;
    for (size_t i = 0; i < n; i++) x[i] = base_f16_to_f32(base_f32_to_f16(x[i]));
}

vk_buf tbuf_alloc(vk_device *dev, size_t n, op_dtype t)
{
    vk_buf b;
    vkf_status s = vk_buf_alloc(dev, n * op_dtype_size(t), VK_MEM_DEVICE, "test tensor", &b);
    cr_assert_eq(s, VKF_OK, "alloc: %s", base_diag_error(dev->diag));
    return b;
}

vk_buf tbuf_upload(vk_device *dev, const float *x, size_t n, op_dtype t)
{
    vk_buf b = tbuf_alloc(dev, n, t);
    vkf_status s;
    if (t == OP_F16) {
        uint16_t *h = malloc(n * 2 + 2);
        for (size_t i = 0; i < n; i++) h[i] = base_f32_to_f16(x[i]);
        s = vk_upload(dev, &b, 0, h, n * 2);
        free(h);
    } else {
        s = vk_upload(dev, &b, 0, x, n * 4);
    }
    cr_assert_eq(s, VKF_OK, "upload: %s", base_diag_error(dev->diag));
    return b;
}

void tbuf_download(vk_device *dev, const vk_buf *b, float *x, size_t n, op_dtype t)
{
    vkf_status s;
    if (t == OP_F16) {
        uint16_t *h = malloc(n * 2 + 2);
        s = vk_download(dev, b, 0, h, n * 2);
        for (size_t i = 0; i < n; i++) x[i] = base_f16_to_f32(h[i]);
        free(h);
    } else {
        s = vk_download(dev, b, 0, x, n * 4);
    }
    cr_assert_eq(s, VKF_OK, "download: %s", base_diag_error(dev->diag));
}

vk_buf tbuf_upload_i32(vk_device *dev, const int32_t *x, size_t n)
{
    vk_buf b;
    cr_assert_eq(vk_buf_alloc(dev, n * 4, VK_MEM_DEVICE, "test ints", &b), VKF_OK);
    cr_assert_eq(vk_upload(dev, &b, 0, x, n * 4), VKF_OK, "%s", base_diag_error(dev->diag));
    return b;
}

void trun(vkf_context *ctx, op_list *l)
{
    cr_assert_eq(op_list_run(ctx->dev, l), VKF_OK, "%s", vkf_last_error(ctx));
    op_list_free(l);
}

tcli_result *tcli_run(const char *cmd, const char *args, const void *in, size_t in_len)
{
    static tcli_result r;
    memset(&r, 0, sizeof r);
    char inp[64] = "/dev/null", errp[64], line[8192];
    snprintf(errp, sizeof errp, "/tmp/vkf-cli-err.%d", (int)getpid());
    if (in) {
        snprintf(inp, sizeof inp, "/tmp/vkf-cli-in.%d", (int)getpid());
        FILE *f = fopen(inp, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(in, 1, in_len, f), in_len);
        fclose(f);
    }
    snprintf(line, sizeof line, "%s %s <%s 2>%s", cmd, args, inp, errp);
    FILE *p = popen(line, "r");
    cr_assert_not_null(p);
    size_t n = fread(r.out, 1, sizeof r.out - 1, p);
    r.out[n] = 0;
    int st = pclose(p);
    FILE *e = fopen(errp, "r");
    if (e) {
        n = fread(r.err, 1, sizeof r.err - 1, e);
        r.err[n] = 0;
        fclose(e);
    }
    unlink(errp);
    if (in) unlink(inp);
    cr_assert(WIFEXITED(st), "`%s %s` crashed (signal %d)\nstderr: %s", cmd, args, WIFSIGNALED(st) ? WTERMSIG(st) : 0, r.err);
    r.status = WEXITSTATUS(st);
    return &r;
}

tcli_result *tcli_run_tty(const char *cmd, const char *args)
{
    char line[8192], quoted[8192];
    snprintf(line, sizeof line, "%s %s", cmd, args);
    size_t n = 0;
    quoted[n++] = '\'';
    for (const char *p = line; *p && n + 5 < sizeof quoted; p++) {
        if (*p == '\'') memcpy(quoted + n, "'\\''", 4), n += 4;
        else quoted[n++] = *p;
    }
    quoted[n++] = '\'', quoted[n] = 0;
    char script[8300];
    snprintf(script, sizeof script, "script -qfec %s /dev/null", quoted);
    return tcli_run(script, "", NULL, 0);
}

void tlinked_dir(char *dir, size_t cap, const char *tag, const char *src, const char *files)
{
    ttmpdir_create(dir, cap, tag);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd $(realpath -e %s) && ln -s $(for f in %s; do echo $PWD/$f; done) %s/", src, files, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

void tvocab_model(char *dir, size_t cap, const char *weights_dir, uint32_t n)
{
    tlinked_dir(dir, cap, "vocab", weights_dir, "config.json model.safetensors");
    char path[600];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    static const char *const first[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (uint32_t i = 0; i < n; i++) {
        if (i < 5) fprintf(f, "%s\n", first[i]);
        else if (i < 31) fprintf(f, "%c\n", 'a' + (int)(i - 5));
        else fprintf(f, "w%u\n", i);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    f = fopen(path, "w");
    fputs("{\"tokenizer_class\": \"BertTokenizer\", \"do_lower_case\": true}", f);
    fclose(f);
}

static bool real_model(const char *dir, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, R_OK) == 0) return true;
    const char *left_out = getenv("VKF_TEST_NO_MINILM");
    cr_assert(left_out && !strcmp(left_out, "1"),
              "models/%s is missing: run bash scripts/fetch_models.sh (the README's test command does)", name);
    fprintf(stderr, "%s left out (VKF_TEST_NO_MINILM=1): what needs it is skipped\n", name);
    return false;
}

bool tminilm(void) { return real_model(TMINILM, "all-MiniLM-L6-v2"); }
bool tmpnet(void) { return real_model(TMPNET, "all-mpnet-base-v2"); }

ttext tb64(const char *s)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    ttext t = {malloc(n + 1), 0};
    cr_assert_not_null(t.b);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *p = strchr(tbl, s[i]);
        if (!p || !s[i]) continue;
        acc = acc << 6 | (uint32_t)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            t.b[t.n++] = (char)(acc >> bits & 0xFF);
        }
    }
    t.b[t.n] = 0;
    return t;
}

int tids_differ(const int32_t *got, uint32_t n, const cJSON *want)
{
    int bad = (int)n != cJSON_GetArraySize(want);
    uint32_t i = 0;
    for (const cJSON *e = want->child; e && i < n; e = e->next, i++) bad += got[i] != (int32_t)e->valuedouble;
    return bad;
}

void tlog_ids(const char *what, int idx, const int32_t *got, uint32_t n, const cJSON *want)
{
    char g[4096] = "", w[4096] = "";
    size_t gl = 0, wl = 0;
    for (uint32_t i = 0; i < n && gl < sizeof g - 16; i++) gl += (size_t)snprintf(g + gl, sizeof g - gl, "%d ", got[i]);
    for (const cJSON *e = want->child; e && wl < sizeof w - 16; e = e->next)
        wl += (size_t)snprintf(w + wl, sizeof w - wl, "%d ", (int)e->valuedouble);
    cr_log_error("%s, text %d:\n  got  %s\n  want %s", what, idx, g, w);
}

bool tvalid_utf8(const char *b, size_t n) { return tok_utf8_valid(b, n); }

char *tstream_decode(vkf_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, size_t *len, int *partial)
{
    vkf_decode_stream *st;
    cr_assert_eq(vkf_decode_stream_create(tok, skip_special, &st), VKF_OK);
    size_t an = 0, cap = 64;
    char *acc = malloc(cap);
    *partial = 0;
    for (size_t k = 0; k <= n; k++) {
        const char *p;
        size_t pl;
        if (k < n) cr_assert_eq(vkf_decode_stream_step(st, ids[k], &p, &pl), VKF_OK, "%s", vkf_last_error(NULL));
        else cr_assert_eq(vkf_decode_stream_finish(st, &p, &pl), VKF_OK, "%s", vkf_last_error(NULL));
        /* a piece never stops inside a character */
        if (!tok_utf8_valid(p, pl)) (*partial)++;
        while (an + pl + 1 > cap) cap *= 2;
        acc = realloc(acc, cap);
        memcpy(acc + an, p, pl), an += pl;
    }
    acc[an] = 0;
    vkf_decode_stream_destroy(st);
    *len = an;
    return acc;
}

void tcorpus_load(tcorpus *c, const char *refs_path)
{
    c->json = tread_json(VKF_TEST_DATA "/tokenizers/corpus.json");
    c->refs = tread_json(refs_path);
    cJSON *arr = cJSON_GetObjectItem(c->json, "texts");
    c->n = cJSON_GetArraySize(arr);
    c->texts = calloc((size_t)c->n, sizeof *c->texts);
    cr_assert_not_null(c->texts);
    for (int i = 0; i < c->n; i++) c->texts[i] = tb64(cJSON_GetArrayItem(arr, i)->valuestring);
}

void tcorpus_free(tcorpus *c)
{
    for (int i = 0; i < c->n; i++) free(c->texts[i].b);
    free(c->texts);
    cJSON_Delete(c->json);
    cJSON_Delete(c->refs);
    memset(c, 0, sizeof *c);
}

cJSON *tread_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s missing", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert(buf && fread(buf, 1, (size_t)n, f) == (size_t)n, "%s: read failed", path);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    cr_assert_not_null(j, "%s: bad JSON", path);
    return j;
}

void ttmpdir_create(char *dir, size_t size, const char *tag)
{
    snprintf(dir, size, "/tmp/vkf-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

void ttmpdir_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

void *tread_file(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s missing", path);
    void *x = malloc(bytes ? bytes : 1);
    cr_assert_eq(fread(x, 1, bytes, f), bytes, "%s is short", path);
    fclose(f);
    return x;
}

vkf_model *tload_model(vkf_context *ctx, const char *dir, vkf_precision p)
{
    vkf_model *m = NULL;
    vkf_model_desc d = {.precision = p};
    vkf_status s = vkf_model_load(ctx, dir, &d, &m);
    cr_assert_eq(s, VKF_OK, "%s: %s", dir, vkf_last_error(ctx));
    return m;
}

void twrite_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

void texpect_tokenizer_error(const char *dir, vkf_status s, const char *needle)
{
    vkf_tokenizer *tok = (vkf_tokenizer *)1;
    vkf_status got = vkf_tokenizer_load(dir, &tok);
    cr_expect_eq(got, s, "status %s, want %s: %s", vkf_status_string(got), vkf_status_string(s), vkf_last_error(NULL));
    cr_expect_null(tok);
    cr_expect(strstr(vkf_last_error(NULL), needle) != NULL, "message '%s' lacks '%s'", vkf_last_error(NULL), needle);
}

void texpect_st_error(base_diag *d, const char *path, vkf_status want, const char *needle)
{
    st_checkpoint ck;
    vkf_status s = st_open(d, path, &ck);
    cr_assert_eq(s, want, "%s: got %s: %s", path, vkf_status_string(s), d->error);
    cr_assert(strstr(d->error, needle), "expected '%s' in: %s", needle, d->error);
    cr_assert_eq(ck.n_t, 0);
}

void twith_config(char *dir, size_t cap, const char *src, const char *files, const char *key, const char *value)
{
    tlinked_dir(dir, cap, "config", src, files);
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", src);
    cJSON *cfg = tread_json(path);
    cJSON_DeleteItemFromObject(cfg, key);
    cJSON_AddItemToObject(cfg, key, cJSON_Parse(value));
    char *text = cJSON_Print(cfg);
    twrite_file(dir, "config.json", text, strlen(text));
    free(text);
    cJSON_Delete(cfg);
}

static const vkf_tensor *find_input(const vkf_tensor *in, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(in[i].name, name)) return &in[i];
    return NULL;
}

/* The case again as the text API runs it, packed without padding (rt_text.packed;
 * texts whose masks are not ones then zeros take the padded path): per-token
 * outputs at the real tokens and pooled outputs equal HF's. Families that pack
 * must have run a packed graph when every mask is right-padded. */
void tcheck_packed_run(vkf_model *m, const char *name, const vkf_tensor *in, uint32_t n_in, const vkf_tensor *out, float *const *want,
                       const uint64_t *counts, uint32_t n_out, double tol)
{
    const vkf_tensor *ids = find_input(in, n_in, "input_ids"), *mask = find_input(in, n_in, "attention_mask");
    const vkf_tensor *tt = find_input(in, n_in, "token_type_ids"), *pos = find_input(in, n_in, "position_ids");
    uint32_t B = ids->shape[0], S = ids->shape[1];
    bool right_padded = true;
    for (uint32_t b = 0; mask && b < B; b++)
        for (uint32_t j = 1; j < S; j++)
            if (((const int32_t *)mask->data)[b * S + j] && !((const int32_t *)mask->data)[b * S + j - 1]) right_padded = false;
    rt_text t = {.B = B, .S = S, .ids = ids->data, .mask = mask ? mask->data : NULL, .tt = tt ? tt->data : NULL,
                 .pos = pos ? pos->data : NULL, .packed = true};
    rt_output o[4];
    for (uint32_t i = 0; i < n_out; i++) o[i] = (rt_output){out[i].name, malloc(counts[i] * 4)};
    cr_assert_eq(rt_run_text(&m->run, &t, o, n_out), VKF_OK, "%s packed: %s", name, vkf_last_error(m->ctx));
    bool packed = false;
    for (uint32_t i = 0; i < m->run.cache.n; i++) packed |= m->run.cache.e[i].key.packed > 0;
    cr_assert_eq(packed, right_padded && m->m.family->packed_text && !m->m.encoder_decoder, "%s: a packed graph ran: %d", name, packed);
    for (uint32_t i = 0; i < n_out; i++) {
        float *got = o[i].data;
        uint64_t per = counts[i] % ((uint64_t)B * S) == 0 ? counts[i] / ((uint64_t)B * S) : 0; /* per token, else pooled */
        double d = 0;
        for (uint64_t k = 0; k < counts[i]; k++) {
            uint64_t tk = per ? k / per : 0;
            if (per && mask && !((const int32_t *)mask->data)[tk]) continue;
            d = fmax(d, fabs((double)got[k] - want[i][k]));
        }
        cr_expect_leq(d, tol, "%s packed: %s differs from HF by %g at real tokens", name, out[i].name, d);
        free(got);
    }
}
