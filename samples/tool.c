/* The shared helpers of the command-line tools (see tool.h). */
#define _POSIX_C_SOURCE 200809L
#include "tool.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vkformer.h"

static int progress_open; /* a progress line without its newline yet */

void tool_progress_break(void)
{
    if (progress_open) fputc('\n', stderr), progress_open = 0;
}

static void vmessage(const char *fmt, va_list ap)
{
    tool_progress_break();
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int tool_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    return TOOL_FAIL;
}

int tool_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    fprintf(stderr, "(see %s --help)\n", tool_name);
    va_end(ap);
    return TOOL_USAGE;
}

void tool_print_version(void)
{
    printf("%s (vkformer) %s\n", tool_name, vkf_version_string());
}

int tool_getopt(int argc, char *const *argv, const char *shortopts, const struct option *longopts)
{
    char opts[128];
    snprintf(opts, sizeof opts, ":%s", shortopts); /* ':' reports a missing value apart */
    opterr = 0;
    optopt = 0;
    int c = getopt_long(argc, argv, opts, longopts, NULL);
    if (c != '?' && c != ':') return c;
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    int is_long = !strncmp(arg, "--", 2);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    if (c == ':') {
        if (is_long) tool_usage_error("option '%s' needs a value", name);
        else tool_usage_error("option '-%c' needs a value", optopt);
    } else if (is_long || !optopt) {
        tool_usage_error("unrecognized option '%s'", name);
    } else {
        tool_usage_error("unknown option '-%c'", optopt);
    }
    return '?';
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

int tool_parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return 0;
    *out = (float)v;
    return 1;
}

double tool_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
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

/* ---- texts ----------------------------------------------------------------------------- */

int tool_texts_add(tool_texts *t, const char *s, size_t n, size_t where)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char **ns = realloc(t->s, cap * sizeof *ns);
        if (ns) t->s = ns;
        size_t *nn = ns ? realloc(t->n, cap * sizeof *nn) : NULL;
        if (nn) t->n = nn;
        size_t *nw = nn ? realloc(t->where, cap * sizeof *nw) : NULL;
        if (!nw) return tool_fail("out of memory");
        t->where = nw;
        t->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy) return tool_fail("out of memory");
    memcpy(copy, s, n);
    copy[n] = 0;
    t->s[t->count] = copy;
    t->n[t->count] = n;
    t->where[t->count++] = where;
    return TOOL_OK;
}

void tool_texts_clear(tool_texts *t)
{
    for (size_t i = 0; i < t->count; i++) free(t->s[i]);
    t->count = 0;
}

void tool_texts_free(tool_texts *t)
{
    tool_texts_clear(t);
    free(t->s);
    free(t->n);
    free(t->where);
    memset(t, 0, sizeof *t);
}

const char *tool_text_name(const tool_texts *t, size_t i, char *buf, size_t size)
{
    snprintf(buf, size, "%s %zu", t->from_file ? "line" : "text", i < t->count ? t->where[i] : i + 1);
    return buf;
}

int tool_input_open(tool_input *in, char *const *args, size_t n_args, const char *file, int skip_empty)
{
    memset(in, 0, sizeof *in);
    in->args = args, in->n_args = n_args, in->skip_empty = skip_empty;
    if (n_args) return TOOL_OK;
    if (!file || !strcmp(file, "-")) {
        in->f = stdin, in->path = "standard input";
        return TOOL_OK;
    }
    in->path = file;
    in->f = fopen(file, "rb");
    return in->f ? TOOL_OK : tool_fail("%s: %s", file, strerror(errno));
}

int tool_input_next(tool_input *in, tool_texts *t, size_t max)
{
    tool_texts_clear(t);
    t->from_file = in->n_args == 0;
    while (t->count < max) {
        if (in->n_args) {
            if (in->next_arg == in->n_args) break;
            const char *s = in->args[in->next_arg++];
            if (tool_texts_add(t, s, strlen(s), in->next_arg) != TOOL_OK) return TOOL_FAIL;
            continue;
        }
        errno = 0;
        ssize_t len = getline(&in->buf, &in->cap, in->f);
        if (len < 0) {
            if (ferror(in->f)) return tool_fail("%s: %s", in->path, errno ? strerror(errno) : "read failed");
            break;
        }
        in->line++;
        if (len && in->buf[len - 1] == '\n') len--;
        if (len && in->buf[len - 1] == '\r') len--;
        if (!len && in->skip_empty) continue;
        if (tool_texts_add(t, in->buf, (size_t)len, in->line) != TOOL_OK) return TOOL_FAIL;
    }
    return TOOL_OK;
}

void tool_input_close(tool_input *in)
{
    if (in->f && in->f != stdin) fclose(in->f);
    free(in->buf);
    memset(in, 0, sizeof *in);
}

int tool_texts_from_file(tool_texts *t, const char *path, int skip_empty)
{
    tool_input in;
    int rc = tool_input_open(&in, NULL, 0, path, skip_empty);
    tool_texts batch = {0};
    while (rc == TOOL_OK) {
        rc = tool_input_next(&in, &batch, 4096);
        if (!batch.count) break;
        for (size_t i = 0; i < batch.count && rc == TOOL_OK; i++) rc = tool_texts_add(t, batch.s[i], batch.n[i], batch.where[i]);
    }
    t->from_file = 1;
    tool_texts_free(&batch);
    tool_input_close(&in);
    return rc;
}

int tool_labels(const char *arg, const char *file, tool_texts *labels)
{
    if (!arg == !file) return tool_usage_error("give the labels with --labels or --labels-file (one of them)");
    if (file) {
        int rc = tool_texts_from_file(labels, file, 1);
        return rc == TOOL_OK && !labels->count ? tool_usage_error("%s: no labels", file) : rc;
    }
    for (const char *p = arg;;) {
        size_t n = strcspn(p, ",");
        const char *end = p + n;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        size_t len = (size_t)(end - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (!len) return tool_usage_error("--labels has an empty label: '%s'", arg);
        int rc = tool_texts_add(labels, p, len, labels->count + 1);
        if (rc != TOOL_OK || !*end) return rc;
        p = end + 1;
    }
}

void tool_labels_usage(FILE *f, const char *default_template)
{
    fprintf(f, "  -l, --labels L         comma-separated labels\n"
               "      --labels-file F    one label per line ('-': standard input)\n"
               "  -t, --template T       hypothesis template with {} for the label\n"
               "                         (default \"%s\")\n",
            default_template);
}

/* ---- output ------------------------------------------------------------------------------ */

void tool_results_begin(void)
{
    /* a progress line on the terminal the results go to: erased, redrawn after them */
    if (progress_open && isatty(STDOUT_FILENO)) fputs("\r\033[K", stderr), progress_open = 0;
}

void tool_emit(tool_output *o, cJSON *item)
{
    tool_results_begin();
    char *s = item ? cJSON_PrintUnformatted(item) : NULL;
    if (o->format == TOOL_JSON) fputs(o->items ? ",\n" : "[\n", stdout);
    fputs(s ? s : "null", stdout);
    if (o->format == TOOL_JSONL) fputc('\n', stdout);
    fflush(stdout);
    o->items++;
    free(s);
    cJSON_Delete(item);
}

void tool_emit_end(tool_output *o)
{
    if (o->format == TOOL_JSON) fputs(o->items ? "\n]\n" : "[]\n", stdout);
    fflush(stdout);
}

/* ---- timing and progress ------------------------------------------------------------------ */

int tool_progress_on(int quiet) { return !quiet && isatty(STDERR_FILENO); }

void tool_progress_count(int quiet, const char *what, size_t n, const char *unit)
{
    if (!tool_progress_on(quiet)) return;
    fprintf(stderr, "\r%s: %zu %s", what, n, unit);
    progress_open = 1;
}

void tool_show_progress(void *user, uint64_t done, uint64_t total)
{
    static int shown = -1;
    (void)user;
    if (total < (64u << 20)) return; /* only big models are worth a progress line */
    int pct = (int)(100.0 * done / total);
    if (pct == shown && done != total) return;
    shown = done == total ? -1 : pct;
    fprintf(stderr, "\rloading weights: %3d%% (%llu / %llu MiB)", pct, (unsigned long long)(done >> 20),
            (unsigned long long)(total >> 20));
    progress_open = done != total;
    if (done == total) fputc('\n', stderr);
}

void tool_timing(const tool_model_opts *o, double run_s, size_t n, const char *unit)
{
    if (o->quiet) return;
    tool_progress_break();
    fprintf(stderr, "%s: load %.0f ms, %zu %s%s in %.1f ms", tool_name, o->load_s * 1e3, n, unit, n == 1 ? "" : "s", run_s * 1e3);
    if (n > 1) fprintf(stderr, " (%.2f ms per %s)", run_s * 1e3 / (double)n, unit);
    fputc('\n', stderr);
}

/* ---- model tools ------------------------------------------------------------------------ */

void tool_model_usage(FILE *f)
{
    fprintf(f, "  -m, --model DIR        the Hugging Face model directory, or a Hub id found in the\n"
               "                         local Hugging Face cache (org/name; nothing is downloaded)\n"
               "      --device N         Vulkan device index (see vkformer-info)\n"
               "      --precision fp32|fp16  storage precision (default: fp16 on GPUs with 16-bit\n"
               "                         storage, fp32 on CPU drivers)\n"
               "      --batch-size N     inputs per inference (default 32)\n"
               "  -j, --json             results as a JSON array, one element per input\n"
               "      --jsonl            results as JSON lines, one per input, as each finishes\n"
               "  -q, --quiet            no progress or timing lines\n"
               "  -V, --version          print the version\n"
               "  -h, --help             this help\n");
}

int tool_model_option(int c, const char *arg, tool_model_opts *o, void (*usage)(FILE *))
{
    unsigned v;
    switch (c) {
    case 'm': o->model = arg; return TOOL_CONTINUE;
    case 'j': o->out.format = TOOL_JSON; return TOOL_CONTINUE;
    case 1002: o->out.format = TOOL_JSONL; return TOOL_CONTINUE;
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
    case 1003:
        if (!tool_parse_u32(arg, 1, 4096, &o->batch)) return tool_usage_error("--batch-size takes 1 to 4096, not '%s'", arg);
        return TOOL_CONTINUE;
    case '?': return TOOL_USAGE; /* tool_getopt said why */
    default: return tool_usage_error("unknown option");
    }
}

static const tool_texts *current_batch;

void tool_set_batch(const tool_texts *t) { current_batch = t; }

/* The library names a text of a call "text N" (0-based in the call's array). */
static const char *rename_text(const char *msg, char *buf, size_t size)
{
    unsigned idx;
    int used = 0;
    if (!current_batch || sscanf(msg, "text %u%n", &idx, &used) != 1 || !used || idx >= current_batch->count) return msg;
    if (msg[used] != ':' && msg[used] != ' ') return msg;
    char name[64];
    snprintf(buf, size, "%s%s", tool_text_name(current_batch, idx, name, sizeof name), msg + used);
    return buf;
}

static void tool_log(void *user, vkf_log_level level, const char *msg)
{
    static const char *const levels[] = {"error", "warning", "info", "debug"};
    char buf[2300];
    (void)user;
    tool_progress_break();
    fprintf(stderr, "%s: %s: %s\n", tool_name, levels[level <= VKF_LOG_DEBUG ? level : VKF_LOG_DEBUG], rename_text(msg, buf, sizeof buf));
}

int tool_fail_lib(const vkf_context *ctx)
{
    char buf[2300];
    return tool_fail("%s", rename_text(vkf_last_error(ctx), buf, sizeof buf));
}

int tool_open_model(tool_model_opts *o, vkf_context **ctx, vkf_model **model)
{
    *ctx = NULL, *model = NULL;
    if (!o->model) return tool_usage_error("--model DIR is required");
    double t0 = tool_now();
    o->mdesc.progress = tool_progress_on(o->quiet) ? tool_show_progress : NULL;
    o->mdesc.task = o->task;
    if (!o->cdesc.log_fn) o->cdesc.log_fn = tool_log;
    if (vkf_context_create(&o->cdesc, ctx) != VKF_OK) return tool_fail("%s", vkf_last_error(NULL));
    if (vkf_model_load(*ctx, o->model, &o->mdesc, model) != VKF_OK) {
        tool_fail("%s", vkf_last_error(*ctx)); /* on a line of its own after a progress line */
        vkf_context_destroy(*ctx);
        *ctx = NULL;
        return TOOL_FAIL;
    }
    o->load_s = tool_now() - t0;
    return TOOL_OK;
}

void tool_model_line(const tool_model_opts *o, vkf_context *ctx, const vkf_model_info *info)
{
    if (o->quiet) return;
    vkf_device_info dev;
    vkf_context_device(ctx, &dev);
    fprintf(stderr, "%s: %s: %s (%s), %llu parameters, %s on %s\n", tool_name, o->model, info->type, info->task,
            (unsigned long long)info->parameters, info->precision == VKF_FP16 ? "fp16" : "fp32", dev.name);
}

int tool_load_audio(const char *path, uint32_t rate, vkf_audio *out)
{
    vkf_status st;
    if (!strcmp(path, "-")) {
        size_t size;
        char *bytes = tool_read_all("-", &size);
        if (!bytes) return TOOL_FAIL;
        st = vkf_audio_load_memory(bytes, size, "standard input", rate, out);
        free(bytes);
    } else {
        st = vkf_audio_load(path, rate, out);
    }
    return st == VKF_OK ? TOOL_OK : tool_fail("%s", vkf_last_error(NULL));
}
