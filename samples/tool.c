/* The shared helpers of the command-line tools (see tool.h). */
#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vkformer.h"

int tool_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return TOOL_FAIL;
}

int tool_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see %s --help)\n", tool_name);
    va_end(ap);
    return TOOL_USAGE;
}

void tool_print_version(void)
{
    printf("%s (vkformer) %s\n", tool_name, vkf_version_string());
}

int tool_parse_u32(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || s[0] == '-' || v < lo || v > hi) return 0;
    *out = (unsigned)v;
    return 1;
}

char *tool_read_all(const char *path, size_t *size)
{
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        tool_fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
        if (n == cap) {
            char *nb = cap < ((size_t)1 << 31) ? realloc(buf, cap * 2 + 1) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int err = ferror(f);
    if (!is_stdin) fclose(f);
    if (!buf || err) {
        free(buf);
        tool_fail("%s: %s", is_stdin ? "standard input" : path, buf ? "read failed" : "too large to read (2 GiB limit)");
        return NULL;
    }
    buf[n] = 0;
    *size = n;
    return buf;
}

int tool_bundled_path(const char *name, char *out, size_t size)
{
    const char *env = getenv("VKF_MODEL_DIR");
    if (env && *env) {
        snprintf(out, size, "%s/%s", env, name);
        return access(out, R_OK) == 0;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = 0; /* the directory of the executable */
    static const char *const under[] = {"../share/vkformer/models", "models"};
    for (size_t i = 0; i < sizeof under / sizeof *under; i++) {
        if ((size_t)snprintf(out, size, "%s/%s/%s", exe, under[i], name) < size && access(out, R_OK) == 0) return 1;
    }
    return 0;
}

int tool_texts_add(tool_texts *t, const char *s, size_t n)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        const char **ns = realloc(t->s, cap * sizeof *ns);
        if (ns) t->s = ns;
        size_t *nn = ns ? realloc(t->n, cap * sizeof *nn) : NULL;
        if (!nn) return tool_fail("out of memory");
        t->n = nn;
        t->cap = cap;
    }
    t->s[t->count] = s;
    t->n[t->count++] = n;
    return TOOL_OK;
}

int tool_texts_from_file(tool_texts *t, const char *path, int skip_empty)
{
    size_t size;
    char *buf = tool_read_all(path, &size);
    if (!buf) return TOOL_FAIL;
    free(t->buffer);
    t->buffer = buf;
    int rc = TOOL_OK;
    for (size_t at = 0; rc == TOOL_OK && at < size;) {
        char *nl = memchr(buf + at, '\n', size - at);
        size_t end = nl ? (size_t)(nl - buf) : size, len = end - at;
        if (len && buf[at + len - 1] == '\r') len--;
        buf[at + len] = 0; /* NUL-terminated for callers that want C strings */
        if (len || !skip_empty) rc = tool_texts_add(t, buf + at, len);
        at = end + 1;
    }
    return rc;
}

void tool_texts_free(tool_texts *t)
{
    free(t->s);
    free(t->n);
    free(t->buffer);
    memset(t, 0, sizeof *t);
}

void tool_model_usage(FILE *f)
{
    fprintf(f, "  -m, --model DIR        the Hugging Face model directory\n"
               "      --device N         Vulkan device index (see vkformer-info)\n"
               "      --precision fp32|fp16  storage precision (default: fp16 on GPUs with 16-bit\n"
               "                         storage, fp32 on CPU drivers)\n"
               "  -j, --json             JSON output\n"
               "  -q, --quiet            no progress or timing lines\n"
               "  -V, --version          print the version\n"
               "  -h, --help             this help\n");
}

int tool_model_option(int c, const char *arg, tool_model_opts *o, void (*usage)(FILE *))
{
    unsigned v;
    switch (c) {
    case 'm': o->model = arg; return TOOL_CONTINUE;
    case 'j': o->json = 1; return TOOL_CONTINUE;
    case 'q': o->quiet = 1; return TOOL_CONTINUE;
    case 'V': tool_print_version(); return TOOL_OK;
    case 'h': usage(stdout); return TOOL_OK;
    case 1000:
        if (!tool_parse_u32(arg, 0, 1u << 16, &v)) return tool_usage_error("--device takes a device index, not '%s'", arg);
        o->cdesc.use_device_index = 1;
        o->cdesc.device_index = v;
        return TOOL_CONTINUE;
    case 1001:
        if (!strcmp(arg, "fp32")) o->mdesc.precision = VKF_FP32;
        else if (!strcmp(arg, "fp16")) o->mdesc.precision = VKF_FP16;
        else return tool_usage_error("--precision takes fp32 or fp16, not '%s'", arg);
        return TOOL_CONTINUE;
    default: return tool_usage_error("unknown option or missing value");
    }
}

static int progress_open; /* a progress line without its newline yet */

void tool_progress_break(void)
{
    if (progress_open) fputc('\n', stderr), progress_open = 0;
}

void tool_show_progress(void *user, uint64_t done, uint64_t total)
{
    static int shown = -1;
    (void)user;
    if (total < (64u << 20)) return; /* only big models are worth a progress line */
    int pct = (int)(100.0 * done / total);
    if (pct == shown && done != total) return;
    shown = done == total ? -1 : pct;
    fprintf(stderr, "\rloading weights: %3d%% (%llu / %llu MiB)", (int)(100.0 * done / total), (unsigned long long)(done >> 20),
            (unsigned long long)(total >> 20));
    progress_open = done != total;
    if (done == total) fputc('\n', stderr);
}

int tool_open_model(tool_model_opts *o, vkf_context **ctx, vkf_model **model)
{
    *ctx = NULL, *model = NULL;
    if (!o->model) return tool_usage_error("--model DIR is required");
    if (!o->quiet && !o->json) o->mdesc.progress = tool_show_progress;
    if (vkf_context_create(&o->cdesc, ctx) != VKF_OK) return tool_fail("%s", vkf_last_error(NULL));
    if (vkf_model_load(*ctx, o->model, &o->mdesc, model) != VKF_OK) {
        tool_progress_break(); /* the error on a line of its own */
        tool_fail("%s", vkf_last_error(*ctx));
        vkf_context_destroy(*ctx);
        *ctx = NULL;
        return TOOL_FAIL;
    }
    return TOOL_OK;
}
