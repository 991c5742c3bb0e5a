/* vkformer as a Triton Inference Server backend (triton/backend.c), used as a
 * client uses it: a model repository in a temporary directory, the server
 * started by scripts/triton-serve.sh on a free port, the KServe v2 HTTP/JSON
 * protocol (images through the binary tensor data extension) over a small
 * client on POSIX sockets, and the answers compared with the library's own,
 * computed in-process through the public API. Every test starts its own
 * server and stops it by pid at the end, also when an assert fails; a
 * watchdog process stops it when the test process dies (a timeout, a crash). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "common.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

#define VIT VKF_REPO_DIR "/models/vit-tiny-patch16-224"
#define CATS VKF_REPO_DIR "/models/images/000000039769.png"
#define DOG VKF_REPO_DIR "/models/images/dog.jpg"
#define BERT VKF_TEST_DATA "/golden/bert"
#define MLM VKF_TEST_DATA "/text/bert_mlm"
#define NLI VKF_TEST_DATA "/zeroshot/bert_nli"
#define CLIP VKF_TEST_DATA "/clip/zero_shot"

#define MAX_K 8

/* ---- an HTTP/1.1 client on POSIX sockets ------------------------------------------------ */

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* A chunked body decoded in place; returns its length. */
static size_t unchunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    while (in < n) {
        char *end;
        unsigned long size = strtoul(b + in, &end, 16);
        char *eol = strstr(end, "\r\n");
        if (!eol || size == 0 || (size_t)(eol + 2 - b) + size > n) break;
        memmove(b + out, eol + 2, size);
        out += size;
        in = (size_t)(eol + 2 - b) + size + 2;
    }
    b[out] = 0;
    return out;
}

/* One request on a fresh connection to 127.0.0.1:port (HTTP/1.1,
 * Connection: close, Content-Length), the answer read until the server closes.
 * headers: extra header lines ("Name: value\r\n"...), or NULL for a JSON body.
 * *status: the answer's status, 0 when none came; *response: its body
 * (malloc'd, NUL-terminated, chunked transfer decoded). Asserts nothing, so
 * that client threads may call it. */
static void http_ex(const char *method, int port, const char *path, const char *headers, const void *body, size_t body_len, int *status,
                    char **response, size_t *response_len)
{
    *status = 0;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 180};
    bool ok = buf && fd >= 0;
    if (ok) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    }
    if (ok) {
        char head[1024];
        int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n",
                         method, path, port, body_len, headers ? headers : body_len ? "Content-Type: application/json\r\n" : "");
        ok = send_all(fd, head, (size_t)n) && send_all(fd, body, body_len);
    }
    while (ok) {
        if (cap - len < 4096) {
            char *b = realloc(buf, cap *= 2);
            if (!b) break;
            buf = b;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    if (fd >= 0) close(fd);
    if (!buf) buf = calloc(1, 1);
    buf[len] = 0;
    char *eoh = strstr(buf, "\r\n\r\n");
    size_t off = 0;
    if (eoh && !strncmp(buf, "HTTP/1.", 7) && len > 12) {
        *status = atoi(buf + 9);
        off = (size_t)(eoh + 4 - buf);
        bool chunked = false;
        for (char *h = buf; h < eoh; h++) {
            static const char te[] = "\r\ntransfer-encoding: chunked";
            size_t i = 0;
            while (te[i] && h + i < eoh + 2 && (h[i] == te[i] || (h[i] >= 'A' && h[i] <= 'Z' && h[i] + 32 == te[i]))) i++;
            if (!te[i]) chunked = true;
        }
        memmove(buf, buf + off, len - off + 1);
        len -= off;
        if (chunked) len = unchunk(buf, len);
    } else {
        len = 0;
        buf[0] = 0;
    }
    *response = buf;
    if (response_len) *response_len = len;
}

static void http(const char *method, int port, const char *path, const char *body, int *status, char **response)
{
    http_ex(method, port, path, NULL, body, body ? strlen(body) : 0, status, response, NULL);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) && errno == EINTR) {
    }
}

/* ---- the server: a repository, triton-serve.sh, a watchdog --------------------------------- */

static struct server {
    char tmp[256];       /* the repository (tmp/repo) and the server's log and pid file */
    char dirs[4][256];   /* model directories made for the test */
    int n_dirs;
    int port;            /* HTTP; metrics on port + 2 */
    pid_t pid, watchdog;
    int watch_fd;
    bool done;           /* the test reached its end: no log on stderr */
} S;

static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* Three free ports from 18000 + (pid % 1000) * 3 on (parallel tests each get their own). */
static int free_port(void)
{
    int first = (int)(getpid() % 1000);
    for (int i = 0; i < 1000; i++) {
        int p = 18000 + (first + i) % 1000 * 3;
        if (port_free(p) && port_free(p + 1) && port_free(p + 2)) return p;
    }
    cr_assert_fail("no three free ports in 18000..20999");
    return 0;
}

static bool alive(pid_t pid)
{
    if (kill(pid, 0) != 0) return false;
    char path[64], stat[256] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r"); /* a zombie waiting for a reaper is gone already */
    if (f) {
        if (!fgets(stat, sizeof stat, f)) stat[0] = 0;
        fclose(f);
    }
    const char *s = strrchr(stat, ')');
    return !(s && s[1] == ' ' && s[2] == 'Z');
}

/* SIGTERM (Triton's graceful shutdown), SIGKILL after 30 s. */
static void stop_pid(pid_t pid)
{
    if (kill(pid, SIGTERM) != 0) return;
    for (int i = 0; i < 300 && alive(pid); i++) sleep_s(0.1);
    if (alive(pid)) kill(pid, SIGKILL);
    for (int i = 0; i < 50 && alive(pid); i++) sleep_s(0.1);
}

/* The watchdog: waits on a pipe whose other end only the test holds. "q": the
 * test stopped the server itself. End of file: the test died (a timeout, a
 * crash); it stops the server named in the pid file (written by the script as
 * it starts it) and removes the test's directories. */
static void watchdog(int fd, const char *pidfile)
{
    char c = 0;
    ssize_t r;
    while ((r = read(fd, &c, 1)) < 0 && errno == EINTR) {
    }
    if (r == 1 && c == 'q') _exit(0);
    for (int i = 0; i < 300; i++) {
        long pid = 0;
        FILE *f = fopen(pidfile, "r");
        if (f) {
            if (fscanf(f, "%ld", &pid) != 1) pid = 0;
            fclose(f);
        }
        if (pid > 0) {
            stop_pid((pid_t)pid);
            break;
        }
        sleep_s(0.5);
    }
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", S.tmp);
    for (int i = 0; i < S.n_dirs; i++) n += snprintf(cmd + n, sizeof cmd - (size_t)n, " '%s'", S.dirs[i]);
    _exit(system(cmd) != 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 4096) b = realloc(b, cap *= 2);
    }
    fclose(f);
    b[n] = 0;
    return b;
}

static void *read_bytes(const char *path, size_t *n)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s missing", path);
    *n = (size_t)st.st_size;
    return tread_file(path, *n);
}

/* The last lines of the server's log. */
static const char *log_tail(void)
{
    static char tail[6000];
    char path[300];
    snprintf(path, sizeof path, "%s/server.log", S.tmp);
    char *all = read_text(path);
    size_t n = strlen(all);
    snprintf(tail, sizeof tail, "%s", all + (n > sizeof tail - 1 ? n - (sizeof tail - 1) : 0));
    free(all);
    return tail;
}

static void setup(void)
{
    memset(&S, 0, sizeof S);
    S.watch_fd = -1;
    ttmpdir_create(S.tmp, sizeof S.tmp, "triton");
    char repo[300];
    snprintf(repo, sizeof repo, "%s/repo", S.tmp);
    cr_assert_eq(mkdir(repo, 0755), 0);
}

static void teardown(void)
{
    if (S.pid > 0) stop_pid(S.pid);
    if (S.watchdog > 0) {
        ssize_t w = write(S.watch_fd, "q", 1);
        (void)w;
        close(S.watch_fd);
        waitpid(S.watchdog, NULL, 0);
    }
    if (S.pid > 0 && !S.done) fprintf(stderr, "--- tritonserver's log (%s/server.log), its end ---\n%s\n", S.tmp, log_tail());
    for (int i = 0; i < S.n_dirs; i++) ttmpdir_remove(S.dirs[i]);
    if (S.tmp[0]) ttmpdir_remove(S.tmp);
}

/* A text model for the repository, removed at the end: golden/bert's weights
 * (or another's) with a WordPiece vocabulary of n tokens (see tvocab_model). */
static const char *vocab_model(const char *weights, uint32_t n)
{
    cr_assert_lt(S.n_dirs, 4);
    tvocab_model(S.dirs[S.n_dirs], sizeof S.dirs[0], weights, n);
    return S.dirs[S.n_dirs++];
}

/* REPO/name/config.pbtxt as the backend's contract has it (inputs and
 * outputs left to the backend), REPO/name/1 a link to the model directory. */
static void repo_add(const char *name, const char *model_dir, const char *task, const char *more)
{
    char dir[400], link[420], cfg[2048];
    snprintf(dir, sizeof dir, "%s/repo/%s", S.tmp, name);
    cr_assert_eq(mkdir(dir, 0755), 0, "mkdir %s", dir);
    snprintf(cfg, sizeof cfg,
             "backend: \"vkformer\"\n"
             "max_batch_size: 32\n"
             "dynamic_batching { max_queue_delay_microseconds: 20000 }\n"
             "parameters { key: \"task\" value { string_value: \"%s\" } }\n%s",
             task, more ? more : "");
    twrite_file(dir, "config.pbtxt", cfg, strlen(cfg));
    char *target = realpath(model_dir, NULL);
    cr_assert_not_null(target, "%s missing", model_dir);
    snprintf(link, sizeof link, "%s/1", dir);
    cr_assert_eq(symlink(target, link), 0, "symlink %s", link);
    free(target);
}

/* Starts the server on the repository through scripts/triton-serve.sh. */
static void serve(void)
{
    char repo[300], pidfile[300], log[300], err[300], cmd[2048];
    snprintf(repo, sizeof repo, "%s/repo", S.tmp);
    snprintf(pidfile, sizeof pidfile, "%s/server.pid", S.tmp);
    snprintf(log, sizeof log, "%s/server.log", S.tmp);
    snprintf(err, sizeof err, "%s/serve.err", S.tmp);
    S.port = free_port();
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(NULL);
    pid_t w = fork();
    cr_assert_geq(w, 0);
    if (w == 0) {
        close(p[1]);
        watchdog(p[0], pidfile);
    }
    close(p[0]);
    S.watchdog = w;
    S.watch_fd = p[1];
    /* The server keeps none of this process's descriptors (the watchdog's pipe
     * above all: its end of file is this process's end). */
    for (int fd = 3; fd < 1024; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0) fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
    snprintf(cmd, sizeof cmd, "VKF_TRITON_LOG='%s' VKF_TRITON_PIDFILE='%s' bash '%s' '%s' %d 2>'%s'", log, pidfile, VKF_TRITON_SERVE, repo,
             S.port, err);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char line[64] = "";
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    int rc = pclose(f);
    char *msg = read_text(err);
    cr_assert(rc == 0 && atol(line) > 0, "triton-serve.sh failed (status %d):\n%s", rc, msg);
    free(msg);
    S.pid = (pid_t)atol(line);
}

/* ---- the KServe v2 protocol ------------------------------------------------------------- */

/* {"name", "shape": [rows, cols], "datatype": "BYTES", "data": [...]} (rows * cols items). */
static cJSON *bytes_input(const char *name, const char *const *items, int rows, int cols)
{
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "name", name);
    cJSON_AddItemToObject(in, "shape", cJSON_CreateIntArray((const int[]){rows, cols}, 2));
    cJSON_AddStringToObject(in, "datatype", "BYTES");
    cJSON_AddItemToObject(in, "data", cJSON_CreateStringArray(items, rows * cols));
    return in;
}

/* {"inputs": [a, b]} (b may be NULL). */
static cJSON *request(cJSON *a, cJSON *b)
{
    cJSON *r = cJSON_CreateObject(), *ins = cJSON_AddArrayToObject(r, "inputs");
    cJSON_AddItemToArray(ins, a);
    if (b) cJSON_AddItemToArray(ins, b);
    return r;
}

/* POST /v2/models/NAME/infer with the request (deleted); the answer parsed
 * (NULL when it is not JSON). Asserts nothing. */
static cJSON *infer_on(int port, const char *mname, cJSON *req, int *status)
{
    char path[300], *resp;
    snprintf(path, sizeof path, "/v2/models/%s/infer", mname);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    http("POST", port, path, body, status, &resp);
    cJSON *j = cJSON_Parse(resp);
    free(resp);
    free(body);
    return j;
}

static cJSON *infer(const char *mname, cJSON *req, int *status) { return infer_on(S.port, mname, req, status); }

/* n encoded images as the BYTES tensor "image" [n, 1] through the binary
 * tensor data extension: the JSON header, then the tensor's raw bytes (per
 * element a 4-byte little-endian length and the bytes), the header's length
 * in Inference-Header-Content-Length. labels: n_labels labels for every row
 * as "labels" [n, n_labels] in the JSON, or NULL. */
static cJSON *infer_images(const char *mname, const void *const *data, const size_t *size, int n, const char *const *labels, int n_labels,
                           int *status)
{
    size_t raw = 0;
    for (int i = 0; i < n; i++) raw += 4 + size[i];
    cJSON *img = cJSON_CreateObject();
    cJSON_AddStringToObject(img, "name", "image");
    cJSON_AddItemToObject(img, "shape", cJSON_CreateIntArray((const int[]){n, 1}, 2));
    cJSON_AddStringToObject(img, "datatype", "BYTES");
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(img, "parameters"), "binary_data_size", (double)raw);
    cJSON *lab = NULL;
    if (labels) {
        const char **all = malloc(sizeof *all * (size_t)(n * n_labels));
        for (int i = 0; i < n * n_labels; i++) all[i] = labels[i % n_labels];
        lab = bytes_input("labels", all, n, n_labels);
        free(all);
    }
    cJSON *req = request(img, lab);
    char *head = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    size_t hl = strlen(head), len = hl;
    unsigned char *body = malloc(hl + raw);
    memcpy(body, head, hl);
    for (int i = 0; i < n; i++) {
        uint32_t l = (uint32_t)size[i];
        unsigned char le[4] = {(unsigned char)l, (unsigned char)(l >> 8), (unsigned char)(l >> 16), (unsigned char)(l >> 24)};
        memcpy(body + len, le, 4);
        memcpy(body + len + 4, data[i], size[i]);
        len += 4 + size[i];
    }
    char path[300], headers[200], *resp;
    snprintf(path, sizeof path, "/v2/models/%s/infer", mname);
    snprintf(headers, sizeof headers, "Content-Type: application/octet-stream\r\nInference-Header-Content-Length: %zu\r\n", hl);
    http_ex("POST", S.port, path, headers, body, len, status, &resp, NULL);
    cJSON *j = cJSON_Parse(resp);
    free(resp);
    free(body);
    free(head);
    return j;
}

static const char *text_of(const cJSON *j)
{
    static char buf[4096];
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    snprintf(buf, sizeof buf, "%s", s ? s : "(not JSON)");
    free(s);
    return buf;
}

/* The error message of a refused request ("" when there is none). */
static const char *error_of(const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    return cJSON_IsString(e) ? e->valuestring : "";
}

/* The output called name with the shape [rows, cols] (cols 0: any), or NULL. */
static const cJSON *output(const cJSON *resp, const char *name, int rows, int cols, const char *datatype)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(resp, "outputs"))
    {
        const cJSON *n = cJSON_GetObjectItem(o, "name"), *shape = cJSON_GetObjectItem(o, "shape"), *data = cJSON_GetObjectItem(o, "data");
        if (!cJSON_IsString(n) || strcmp(n->valuestring, name)) continue;
        if (cJSON_GetArraySize(shape) != 2 || cJSON_GetArrayItem(shape, 0)->valueint != rows) return NULL;
        int c = cJSON_GetArrayItem(shape, 1)->valueint;
        if ((cols && c != cols) || c < 1 || cJSON_GetArraySize(data) != rows * c) return NULL;
        const cJSON *t = cJSON_GetObjectItem(o, "datatype");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, datatype)) return NULL;
        return o;
    }
    return NULL;
}

static int cols_of(const cJSON *o) { return cJSON_GetArrayItem(cJSON_GetObjectItem(o, "shape"), 1)->valueint; }

/* One row of a classification answer: label BYTES [rows, K] and scores FP32 [rows, K]. */
typedef struct cls {
    int k;
    char label[MAX_K][96];
    float score[MAX_K];
} cls;

/* Row `row` of the answer into c; false when the outputs are not as the contract says. */
static bool parse_cls(const cJSON *resp, int row, int rows, int k, cls *c)
{
    const cJSON *l = output(resp, "label", rows, k, "BYTES"), *s = output(resp, "scores", rows, k, "FP32");
    if (!l || !s || cols_of(l) != cols_of(s) || cols_of(l) > MAX_K) return false;
    c->k = cols_of(l);
    for (int i = 0; i < c->k; i++) {
        const cJSON *li = cJSON_GetArrayItem(cJSON_GetObjectItem(l, "data"), row * c->k + i);
        const cJSON *si = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "data"), row * c->k + i);
        if (!cJSON_IsString(li) || !cJSON_IsNumber(si)) return false;
        snprintf(c->label[i], sizeof c->label[i], "%s", li->valuestring);
        c->score[i] = (float)si->valuedouble;
    }
    return true;
}

static cls want_cls(const cJSON *resp, int row, int rows, int k)
{
    cls c;
    cr_assert(parse_cls(resp, row, rows, k, &c), "row %d: not label BYTES [%d,%d] and scores FP32 [%d,%d]: %s", row, rows, k, rows, k,
              text_of(resp));
    return c;
}

/* The answer equals the library's k scores, best first. */
static void same_scores(const cls *got, const vkf_class_score *want, int k, double tol, const char *what)
{
    cr_assert_eq(got->k, k, "%s: %d scores, want %d", what, got->k, k);
    for (int i = 0; i < k; i++) {
        cr_assert_str_eq(got->label[i], want[i].label, "%s: label %d", what, i);
        cr_assert_float_eq(got->score[i], want[i].prob, tol, "%s: %s scores %.7f, the library %.7f", what, want[i].label, got->score[i],
                           want[i].prob);
    }
}

/* ---- the library in-process ------------------------------------------------------------- */

static vkf_context *lib_context(void)
{
    vkf_context *ctx = NULL;
    cr_assert_eq(vkf_context_create(&(vkf_context_desc){.pipeline_cache = VKF_OFF}, &ctx), VKF_OK, "%s", vkf_last_error(NULL));
    return ctx;
}

static vkf_model *lib_model(vkf_context *ctx, const char *dir)
{
    vkf_model *m = NULL;
    cr_assert_eq(vkf_model_load(ctx, dir, &(vkf_model_desc){0}, &m), VKF_OK, "%s: %s", dir, vkf_last_error(ctx));
    return m;
}

/* Texts in the vocabulary of vocab_model(BERT, 500): a..z and w31..w499, 3 to 10 words. */
static void make_text(char *buf, size_t cap, int i)
{
    uint64_t st = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    int words = 3 + (int)(trand_u64(&st) % 8);
    size_t n = 0;
    buf[0] = 0;
    for (int w = 0; w < words && n + 8 < cap; w++) {
        uint64_t r = trand_u64(&st) % 60;
        if (r < 26) n += (size_t)snprintf(buf + n, cap - n, "%s%c", w ? " " : "", (char)('a' + r));
        else n += (size_t)snprintf(buf + n, cap - n, "%sw%u", w ? " " : "", 31 + (unsigned)(trand_u64(&st) % 469));
    }
}

/* One text to the text classifier; the answer's row 0 (asserts nothing). */
static bool classify_one(int port, const char *mname, const char *text, int *status, cls *c)
{
    cJSON *r = infer_on(port, mname, request(bytes_input("text", &text, 1, 1), NULL), status);
    bool ok = *status == 200 && parse_cls(r, 0, 1, 0, c);
    cJSON_Delete(r);
    return ok;
}

static void good_request_answers(const char *mname, const char *after)
{
    int st;
    cls c;
    bool ok = classify_one(S.port, mname, "a b c", &st, &c);
    cr_assert(ok, "after %s: a good request got %d", after, st);
    cr_assert_eq(c.k, 3, "after %s", after);
}

/* The server's top k of each text equal the library's (ref: n rows of stride scores). */
static void texts_equal_library(const char *mname, const char *const *texts, int n, int k, const vkf_class_score *ref, int stride)
{
    int st;
    cJSON *r = infer(mname, request(bytes_input("text", texts, n, 1), NULL), &st);
    cr_assert_eq(st, 200, "%s: %s", mname, text_of(r));
    for (int i = 0; i < n; i++) {
        cls c = want_cls(r, i, n, k);
        same_scores(&c, ref + i * stride, k, 1e-5, texts[i]);
    }
    cJSON_Delete(r);
}

TestSuite(triton, .init = setup, .fini = teardown);

/* ---- 0. the backend's readers, without a server (triton/parse.c) ---------------------------- */

static uint64_t split(const char *buf, size_t size, uint64_t count, char ***items, size_t **lens, int *rc)
{
    uint64_t bad = ~0ull;
    *rc = vkft_split_bytes((const unsigned char *)buf, size, count, items, lens, &bad);
    return bad;
}

Test(triton_parse, bytes_elements)
{
    /* "ab", "", "x\0y" */
    static const char buf[] = "\x02\0\0\0ab\0\0\0\0\x03\0\0\0x\0y";
    char **items;
    size_t *lens;
    int rc;
    split(buf, sizeof buf - 1, 3, &items, &lens, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(items[0], "ab");
    cr_assert_eq(lens[0], 2);
    cr_assert_str_eq(items[1], "");
    cr_assert_eq(lens[1], 0);
    cr_assert_eq(lens[2], 3);
    cr_assert(!memcmp(items[2], "x\0y", 4));
    vkft_free_items(items, 3);
    free(lens);
    /* cut short: in the third element's bytes, in its length, and a count past the buffer */
    cr_assert_eq(split(buf, sizeof buf - 2, 3, &items, &lens, &rc), 2);
    cr_assert_eq(rc, 1);
    cr_assert(!items && !lens);
    cr_assert_eq(split(buf, 12, 3, &items, &lens, &rc), 2);
    cr_assert_eq(rc, 1);
    cr_assert_eq(split(buf, sizeof buf - 1, 5, &items, &lens, &rc), 4);
    cr_assert_eq(rc, 1);
    cr_assert_eq(split(buf, 0, 1, &items, &lens, &rc), 0);
    cr_assert_eq(rc, 1);
    /* bytes after the last element */
    cr_assert_eq(split(buf, sizeof buf - 1, 2, &items, &lens, &rc), 2);
    cr_assert_eq(rc, 1);
    /* a length of 4 GiB - 1 in a short buffer */
    cr_assert_eq(split("\xff\xff\xff\xff" "abc", 7, 1, &items, &lens, &rc), 0);
    cr_assert_eq(rc, 1);
}

static const char *settings(const char *params, vkft_settings *s)
{
    static char msg[1024];
    char json[1024];
    snprintf(json, sizeof json, "{\"max_batch_size\": 4, \"parameters\": {%s}}", params);
    cJSON *cfg = cJSON_Parse(json);
    cr_assert(cfg, "%s", json);
    const char *e = vkft_read_settings(cfg, s, msg, sizeof msg);
    cJSON_Delete(cfg);
    return e;
}

#define P(k, v) "\"" k "\": {\"string_value\": \"" v "\"}"

Test(triton_parse, model_settings)
{
    vkft_settings s;
    cr_assert_null(settings(P("task", "fill-mask"), &s));
    cr_assert_str_eq(s.task->name, "fill-mask");
    cr_assert_eq(s.task->kind, T_FILL_MASK);
    cr_assert_eq(s.top_k, 5);
    cr_assert_eq(s.device, -1);
    cr_assert(!s.multi_label);
    cr_assert_str_eq(s.template_, VKF_ZERO_SHOT_TEXT_TEMPLATE);
    cr_assert_str_eq(vkft_data_input(s.task), "text");
    cr_assert_null(settings(P("task", "zero-shot-image-classification"), &s));
    cr_assert_str_eq(s.template_, VKF_ZERO_SHOT_TEMPLATE);
    cr_assert_str_eq(vkft_data_input(s.task), "image");
    cr_assert(s.task->labels);
    cr_assert_null(settings(P("task", "zero-shot-classification") "," P("top_k", "3") "," P("device", "2") "," P("multi_label", "true") ","
                            P("template", "It is {}."), &s));
    cr_assert_str_eq(s.task->check, "text-classification");
    cr_assert_eq(s.top_k, 3);
    cr_assert_eq(s.device, 2);
    cr_assert(s.multi_label);
    cr_assert_str_eq(s.template_, "It is {}.");
    /* refused */
    const char *e = settings(P("task", "summarization"), &s);
    cr_assert(e && strstr(e, "not summarization"), "%s", e ? e : "accepted");
    cr_assert(settings("", &s) && strstr(settings("", &s), "needs parameters"));
    const char *bad[] = {P("top_k", "0"), P("top_k", "5x"), P("top_k", ""), P("top_k", "100001"), P("device", "16"), P("device", "-1"),
                         P("device", ""), P("multi_label", "yes"), P("template", "no slot")};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, P("task", "text-classification") ",%s", bad[i]);
        e = settings(p, &s);
        cr_assert(e && strstr(e, "parameters:"), "%s accepted", bad[i]);
    }
}

/* ---- 1. the same numbers as the library ---------------------------------------------------- */

Test(triton, answers_equal_the_library, .timeout = 900)
{
    const char *tc = vocab_model(BERT, 500);
    bool minilm = tminilm();
    repo_add("vit", VIT, "image-classification", NULL);
    repo_add("bert", tc, "text-classification", NULL);
    repo_add("bert_top1", tc, "text-classification", "parameters { key: \"top_k\" value { string_value: \"1\" } }\n");
    if (minilm) repo_add("minilm", TMINILM, "feature-extraction", NULL);
    serve();
    vkf_context *ctx = lib_context();

    /* image-classification: encoded images, one and then two in a request */
    size_t size[2];
    const void *img[2] = {read_bytes(CATS, &size[0]), read_bytes(DOG, &size[1])};
    vkf_model *m = lib_model(ctx, VIT);
    vkf_class_score top[2 * 5];
    cr_assert_eq(vkf_classify_files(m, (const char *[]){CATS, DOG}, 2, top, 5), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_class_score one[5];
    cr_assert_eq(vkf_classify_file(m, CATS, one, 5), VKF_OK, "%s", vkf_last_error(ctx));
    int st;
    cJSON *r = infer_images("vit", img, size, 1, NULL, 0, &st);
    cr_assert_eq(st, 200, "vit: %s", text_of(r));
    cls c = want_cls(r, 0, 1, 5);
    cr_assert_str_eq(c.label[0], "tabby, tabby cat");
    same_scores(&c, one, 5, 1e-5, "the cats photo");
    cJSON_Delete(r);
    r = infer_images("vit", img, size, 2, NULL, 0, &st);
    cr_assert_eq(st, 200, "vit, two images: %s", text_of(r));
    for (int i = 0; i < 2; i++) {
        c = want_cls(r, i, 2, 5);
        same_scores(&c, top + i * 5, 5, 1e-5, i ? "the dog, second of two" : "the cats, first of two");
    }
    cJSON_Delete(r);
    vkf_model_destroy(m);
    free((void *)img[0]);
    free((void *)img[1]);

    /* text-classification: K = top_k (default 5) clamped to the 3 labels */
    const char *texts[4] = {"a b c", "w40 d w41 e", "z", "the quick brown fox"};
    m = lib_model(ctx, tc);
    vkf_class_score tt[4 * 3];
    cr_assert_eq(vkf_classify_texts(m, texts, NULL, 4, tt, 3), VKF_OK, "%s", vkf_last_error(ctx));
    texts_equal_library("bert", texts, 4, 3, tt, 3);
    texts_equal_library("bert_top1", texts, 4, 1, tt, 3);
    vkf_model_destroy(m);

    /* feature-extraction: sentence-transformers' pooling and normalisation */
    if (minilm) {
        const char *s[2] = {"A man is eating food.", "A man is eating a piece of bread."};
        m = lib_model(ctx, TMINILM);
        vkf_model_info info;
        cr_assert_eq(vkf_model_get_info(m, &info), VKF_OK);
        uint32_t dim = info.embedding_size;
        cr_assert_eq(dim, 384);
        float *e = malloc(2 * dim * sizeof *e);
        cr_assert_eq(vkf_embed(m, s, 2, NULL, e), VKF_OK, "%s", vkf_last_error(ctx));
        r = infer("minilm", request(bytes_input("text", s, 2, 1), NULL), &st);
        cr_assert_eq(st, 200, "minilm: %s", text_of(r));
        const cJSON *o = output(r, "embeddings", 2, (int)dim, "FP32");
        cr_assert_not_null(o, "not embeddings FP32 [2,%u]: %.300s", dim, text_of(r));
        double dot = 0, n0 = 0, n1 = 0, diff = 0;
        const cJSON *d = cJSON_GetObjectItem(o, "data")->child;
        float got[2 * 384];
        for (uint32_t i = 0; i < 2 * dim; i++, d = d->next) {
            got[i] = (float)d->valuedouble;
            diff = fmax(diff, fabs(got[i] - e[i]));
        }
        for (uint32_t i = 0; i < dim; i++) {
            dot += got[i] * got[dim + i];
            n0 += got[i] * got[i];
            n1 += got[dim + i] * got[dim + i];
        }
        double cos = dot / sqrt(n0 * n1);
        cr_assert_float_eq(cos, 0.7553, 1e-3, "cos = %.5f", cos);
        cr_assert_float_eq(sqrt(n0), 1.0, 1e-4, "|e0| = %.6f: not normalised", sqrt(n0));
        cr_assert_leq(diff, 1e-5, "the vectors differ from vkf_embed's by %.3g", diff);
        cr_log_info("MiniLM through Triton: cos %.5f, max |server - vkf_embed| %.3g", cos, diff);
        cJSON_Delete(r);
        free(e);
        vkf_model_destroy(m);
    }
    vkf_context_destroy(ctx);
    S.done = true;
}

/* fill-mask, zero-shot-classification and zero-shot-image-classification. */
Test(triton, other_tasks_equal_the_library, .timeout = 900)
{
    const char *mlm = vocab_model(MLM, 300);
    repo_add("mlm", mlm, "fill-mask", NULL);
    repo_add("nli", NLI, "zero-shot-classification", NULL);
    repo_add("clip", CLIP, "zero-shot-image-classification", NULL);
    serve();
    vkf_context *ctx = lib_context();
    int st;

    /* fill-mask: the label is the token's text */
    vkf_model *m = lib_model(ctx, mlm);
    const char *masked[2] = {"a [MASK] c", "[MASK] b"};
    cJSON *r = infer("mlm", request(bytes_input("text", masked, 2, 1), NULL), &st);
    cr_assert_eq(st, 200, "mlm: %s", text_of(r));
    for (int i = 0; i < 2; i++) {
        vkf_fill_mask_result fm[5];
        uint32_t count = 0;
        cr_assert_eq(vkf_fill_mask(m, masked[i], 5, fm, 5, &count), VKF_OK, "%s", vkf_last_error(ctx));
        cr_assert_eq(count, 5);
        cls c = want_cls(r, i, 2, 5);
        for (int j = 0; j < 5; j++) {
            cr_assert_str_eq(c.label[j], fm[j].token_str, "%s: token %d", masked[i], j);
            cr_assert_float_eq(c.score[j], fm[j].score, 1e-5, "%s: %s", masked[i], fm[j].token_str);
        }
    }
    cJSON_Delete(r);
    vkf_model_destroy(m);

    /* zero-shot-classification: scores in the labels' order, the best label */
    const char *labels[3] = {"sports", "politics", "cooking"};
    const char *texts[2] = {"The team won the final.", "Parliament passed the budget."};
    m = lib_model(ctx, NLI);
    cJSON *lab_all = bytes_input("labels", (const char *[]){"sports", "politics", "cooking", "sports", "politics", "cooking"}, 2, 3);
    r = infer("nli", request(bytes_input("text", texts, 2, 1), lab_all), &st);
    cr_assert_eq(st, 200, "nli: %s", text_of(r));
    const cJSON *sc = output(r, "scores", 2, 3, "FP32"), *best = output(r, "label", 2, 1, "BYTES");
    cr_assert(sc && best, "not scores FP32 [2,3] and label BYTES [2,1]: %s", text_of(r));
    for (int i = 0; i < 2; i++) {
        vkf_class_score zs[3];
        cr_assert_eq(vkf_zero_shot_text(m, texts[i], labels, 3, NULL, 0, zs), VKF_OK, "%s", vkf_last_error(ctx));
        for (int j = 0; j < 3; j++) {
            double got = cJSON_GetArrayItem(cJSON_GetObjectItem(sc, "data"), i * 3 + (int)zs[j].index)->valuedouble;
            cr_assert_float_eq(got, zs[j].prob, 1e-5, "%s: %s", texts[i], labels[zs[j].index]);
        }
        cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(best, "data"), i)->valuestring, labels[zs[0].index]);
    }
    cJSON_Delete(r);
    vkf_model_destroy(m);

    /* zero-shot-image-classification: CLIP, the image as binary data */
    const char *what[2] = {"a cat", "a dog"};
    size_t size;
    const void *img = read_bytes(CLIP "/photo0.png", &size);
    m = lib_model(ctx, CLIP);
    vkf_class_score zs[2];
    cr_assert_eq(vkf_zero_shot(m, CLIP "/photo0.png", what, 2, NULL, zs), VKF_OK, "%s", vkf_last_error(ctx));
    r = infer_images("clip", &img, &size, 1, what, 2, &st);
    cr_assert_eq(st, 200, "clip: %s", text_of(r));
    sc = output(r, "scores", 1, 2, "FP32");
    best = output(r, "label", 1, 1, "BYTES");
    cr_assert(sc && best, "not scores FP32 [1,2] and label BYTES [1,1]: %s", text_of(r));
    for (int j = 0; j < 2; j++)
        cr_assert_float_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(sc, "data"), (int)zs[j].index)->valuedouble, zs[j].prob, 1e-5, "%s",
                           what[zs[j].index]);
    cr_assert_str_eq(cJSON_GetObjectItem(best, "data")->child->valuestring, what[zs[0].index]);
    cJSON_Delete(r);
    free((void *)img);
    vkf_model_destroy(m);
    vkf_context_destroy(ctx);
    S.done = true;
}

/* ---- 2. concurrent requests are batched, each answered as alone -------------------------- */

#define N_CONCURRENT 16

typedef struct client {
    const char *text;
    int status;
    bool ok;
    cls c;
    pthread_barrier_t *start;
} client;

static void *client_main(void *arg)
{
    client *cl = arg;
    pthread_barrier_wait(cl->start);
    cl->ok = classify_one(S.port, "bert", cl->text, &cl->status, &cl->c);
    return NULL;
}

Test(triton, concurrent_requests_batch, .timeout = 600)
{
    repo_add("bert", vocab_model(BERT, 500), "text-classification", NULL);
    serve();
    char texts[N_CONCURRENT][128];
    cls alone[N_CONCURRENT];
    for (int i = 0; i < N_CONCURRENT; i++) {
        make_text(texts[i], sizeof texts[i], i);
        int st;
        cr_assert(classify_one(S.port, "bert", texts[i], &st, &alone[i]), "'%s' alone: status %d", texts[i], st);
    }
    client cl[N_CONCURRENT];
    pthread_t th[N_CONCURRENT];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N_CONCURRENT);
    for (int i = 0; i < N_CONCURRENT; i++) {
        cl[i] = (client){.text = texts[i], .start = &start};
        cr_assert_eq(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < N_CONCURRENT; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    double worst = 0;
    for (int i = 0; i < N_CONCURRENT; i++) {
        cr_assert(cl[i].ok, "request %d ('%s') together with the others: status %d", i, texts[i], cl[i].status);
        cr_assert_eq(cl[i].c.k, alone[i].k);
        for (int j = 0; j < alone[i].k; j++) {
            cr_assert_str_eq(cl[i].c.label[j], alone[i].label[j], "'%s': label %d", texts[i], j);
            cr_assert_float_eq(cl[i].c.score[j], alone[i].score[j], 1e-5, "'%s': %s", texts[i], alone[i].label[j]);
            worst = fmax(worst, fabs(cl[i].c.score[j] - alone[i].score[j]));
        }
    }
    /* model_stats[0].batch_stats: one entry per batch size executed */
    int st;
    char *resp;
    http("GET", S.port, "/v2/models/bert/stats", NULL, &st, &resp);
    cr_assert_eq(st, 200, "stats: %s", resp);
    cJSON *stats = cJSON_Parse(resp);
    const cJSON *ms = cJSON_GetArrayItem(cJSON_GetObjectItem(stats, "model_stats"), 0), *b;
    cr_assert_not_null(ms, "%s", resp);
    int largest = 0;
    double executions = 0;
    cJSON_ArrayForEach(b, cJSON_GetObjectItem(ms, "batch_stats"))
    {
        int size = cJSON_GetObjectItem(b, "batch_size")->valueint;
        double count = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "compute_infer"), "count")->valuedouble;
        if (count > 0 && size > largest) largest = size;
        executions += count;
    }
    cr_assert_gt(largest, 1, "no execution batched requests together: %s", resp);
    cr_assert_eq(cJSON_GetObjectItem(ms, "inference_count")->valuedouble, 2 * N_CONCURRENT, "%s", resp);
    cr_log_info("%d concurrent requests: batches of up to %d, %.0f executions in all for %d requests; max |batched - alone| %.3g",
                N_CONCURRENT, largest, executions, 2 * N_CONCURRENT, worst);
    cJSON_Delete(stats);
    free(resp);
    S.done = true;
}

/* ---- 3. bad requests, unload and load, metrics ------------------------------------------ */

static void expect_refused(const char *mname, cJSON *req, const char *what)
{
    int st;
    cJSON *r = infer(mname, req, &st);
    cr_assert(st >= 400 && st < 500, "%s: status %d, want 4xx: %s", what, st, text_of(r));
    cr_assert_gt(strlen(error_of(r)), 0, "%s: no error message: %s", what, text_of(r));
    cr_log_info("%s: %d %s", what, st, error_of(r));
    cJSON_Delete(r);
    good_request_answers("bert", what);
}

/* A Prometheus counter of a model summed over its other labels (Triton 2.51:
 * nv_inference_request_failure{model="m",reason="BACKEND",version="1"} 2), -1 when absent. */
static double metric(const char *text, const char *name, const char *mname)
{
    char key[200];
    snprintf(key, sizeof key, "\n%s{model=\"%s\"", name, mname);
    double sum = -1;
    for (const char *p = text; (p = strstr(p, key)) && (p = strchr(p, '}')); p++) sum = (sum < 0 ? 0 : sum) + strtod(p + 1, NULL);
    return sum;
}

Test(triton, bad_requests_unload_load_and_metrics, .timeout = 600)
{
    const char *tc = vocab_model(BERT, 500);
    repo_add("bert", tc, "text-classification", NULL);
    repo_add("bert_cut", tc, "text-classification", "parameters { key: \"truncation\" value { string_value: \"true\" } }\n");
    repo_add("nli_strict", NLI, "zero-shot-classification", "parameters { key: \"truncation\" value { string_value: \"false\" } }\n");
    repo_add("vit", VIT, "image-classification", NULL);
    serve();
    good_request_answers("bert", "the start");
    const char *one[1] = {"a b c"};
    expect_refused("bert", request(bytes_input("txt", one, 1, 1), NULL), "a wrong input name");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "name", "text");
    cJSON_AddItemToObject(f, "shape", cJSON_CreateIntArray((const int[]){1, 1}, 2));
    cJSON_AddStringToObject(f, "datatype", "FP32");
    cJSON_AddItemToObject(f, "data", cJSON_CreateFloatArray((const float[]){1.5f}, 1));
    expect_refused("bert", request(f, NULL), "FP32 where BYTES is expected");
    expect_refused("bert", request(bytes_input("text", one, 0, 1), NULL), "an empty batch");
    expect_refused("bert", cJSON_Parse("{\"inputs\": []}"), "no input");
    expect_refused("bert", request(bytes_input("text", one, 1, 1), bytes_input("labels", one, 1, 1)), "an input the task does not take");
    expect_refused("vit", request(bytes_input("text", one, 1, 1), NULL), "text to an image model");
    int st;
    const char *not_image = "this is not an image";
    size_t n = strlen(not_image);
    cJSON *r = infer_images("vit", (const void *[]){not_image}, &n, 1, NULL, 0, &st);
    cr_assert(st >= 400 && st < 500, "not an image: status %d: %s", st, text_of(r));
    cr_assert_gt(strlen(error_of(r)), 0, "not an image: %s", text_of(r));
    cr_log_info("an image that is not one: %d %s", st, error_of(r));
    cJSON_Delete(r);
    good_request_answers("bert", "the image that was not one");
    /* past the 64 positions: refused by default (as HF's pipelines fail), cut with truncation "true" */
    char long_text[2048] = "";
    for (int i = 0; i < 300; i++) strcat(long_text, i ? " a" : "a");
    const char *lt = long_text;
    r = infer("bert", request(bytes_input("text", &lt, 1, 1), NULL), &st);
    cr_assert(st >= 400 && st < 500 && strstr(error_of(r), "302 tokens, past the model's 64 positions"), "a text past the positions: %d %s", st,
              text_of(r));
    cr_log_info("a text of 300 words (64 positions): %d %s", st, error_of(r));
    cJSON_Delete(r);
    vkf_context *ctx = lib_context();
    vkf_model *m = lib_model(ctx, tc);
    vkf_class_score want[3];
    cr_assert_eq(vkf_classify_texts(m, &lt, NULL, 1, want, 3), VKF_OK, "%s", vkf_last_error(ctx));
    texts_equal_library("bert_cut", &lt, 1, 3, want, 3); /* (the labels are the model's) */
    vkf_model_destroy(m);
    vkf_context_destroy(ctx);
    /* a zero-shot pair past the positions, without truncation; a short one answers */
    const char *labels[2] = {"sports", "politics"};
    r = infer("nli_strict", request(bytes_input("text", &lt, 1, 1), bytes_input("labels", labels, 1, 2)), &st);
    cr_assert(st >= 400 && st < 500 && strstr(error_of(r), "with a label is"), "a pair past the positions: %d %s", st, text_of(r));
    cr_log_info("a zero-shot pair past the positions: %d %s", st, error_of(r));
    cJSON_Delete(r);
    r = infer("nli_strict", request(bytes_input("text", one, 1, 1), bytes_input("labels", labels, 1, 2)), &st);
    cr_assert_eq(st, 200, "a short pair: %s", text_of(r));
    cJSON_Delete(r);
    good_request_answers("bert", "a text past the positions");
    /* an answer to compare with after the reload */
    cls before, c;
    cr_assert(classify_one(S.port, "bert", "w40 q", &st, &before), "status %d", st);

    /* explicit model control: unload, a request in between, load */
    char *resp;
    http("POST", S.port, "/v2/repository/models/bert/unload", "{}", &st, &resp);
    cr_assert_eq(st, 200, "unload: %s", resp);
    free(resp);
    for (int i = 0; i < 100; i++) { /* the unload finishes in the background */
        http("GET", S.port, "/v2/models/bert/ready", NULL, &st, &resp);
        free(resp);
        if (st != 200) break;
        sleep_s(0.1);
    }
    cr_assert_neq(st, 200, "still ready after the unload");
    r = infer("bert", request(bytes_input("text", one, 1, 1), NULL), &st);
    cr_assert(st >= 400, "a request to the unloaded model: status %d: %s", st, text_of(r));
    cr_log_info("unloaded: %d %s", st, error_of(r));
    cJSON_Delete(r);
    /* not ready comes before the end of the unload (the index says UNLOADING until then) */
    for (int i = 0; i < 100; i++) {
        http("POST", S.port, "/v2/repository/index", "{}", &st, &resp);
        cr_assert_eq(st, 200, "index: %s", resp);
        cr_assert(strstr(resp, "\"name\":\"bert\""), "%s", resp);
        if (strstr(resp, "\"state\":\"UNAVAILABLE\"") || i == 99) break;
        free(resp);
        sleep_s(0.1);
    }
    cr_assert(strstr(resp, "\"state\":\"UNAVAILABLE\""), "the unload did not end in 10 s: %s", resp);
    free(resp);
    http("GET", S.port, "/v2/models/vit/ready", NULL, &st, &resp);
    cr_assert_eq(st, 200, "the other model went too: %s", resp);
    free(resp);
    http("POST", S.port, "/v2/repository/models/bert/load", "{}", &st, &resp);
    cr_assert_eq(st, 200, "load: %s", resp);
    free(resp);
    http("GET", S.port, "/v2/models/bert/ready", NULL, &st, &resp);
    cr_assert_eq(st, 200, "not ready after the load: %s", resp);
    free(resp);
    cr_assert(classify_one(S.port, "bert", "w40 q", &st, &c), "after the load: status %d", st);
    cr_assert_str_eq(c.label[0], before.label[0]);
    cr_assert_float_eq(c.score[0], before.score[0], 1e-6);

    /* models that cannot load (an unknown task; a version folder that is no model): refused
     * with a message, and the server (which finalizes them too) keeps serving */
    repo_add("nonsense", VIT, "nonsense", NULL);
    http("POST", S.port, "/v2/repository/models/nonsense/load", "{}", &st, &resp);
    cr_assert(st >= 400 && strstr(resp, "task"), "a model with an unknown task: %d %s", st, resp);
    free(resp);
    repo_add("nothing", S.tmp, "image-classification", NULL); /* 1/ -> the temporary folder: no config.json */
    http("POST", S.port, "/v2/repository/models/nothing/load", "{}", &st, &resp);
    cr_assert(st >= 400, "a version folder without a model: %d %s", st, resp);
    cr_log_info("an empty version folder: %d %s", st, resp);
    free(resp);
    good_request_answers("bert", "models that failed to load");

    /* metrics, on port + 2 */
    http("GET", S.port + 2, "/metrics", NULL, &st, &resp);
    cr_assert_eq(st, 200, "metrics: %s", resp);
    double ok = metric(resp, "nv_inference_request_success", "bert");
    cr_assert_gt(ok, 0, "nv_inference_request_success{model=\"bert\"...} %g in:\n%.3000s", ok, resp);
    double failed = metric(resp, "nv_inference_request_failure", "vit");
    cr_assert_geq(failed, 1, "nv_inference_request_failure{model=\"vit\"...} %g (an image that is not one failed)", failed);
    cr_log_info("metrics: bert succeeded %g since its load, vit failed %g", ok, failed);
    free(resp);
    S.done = true;
}

/* ---- 4. load: 8 clients, 200 requests ------------------------------------------------- */

#define N_LOAD 200
#define LOAD_THREADS 8

static struct load {
    char texts[N_LOAD][128];
    double latency[N_LOAD];
    int status[N_LOAD];
    cls c[N_LOAD];
    int next;
    pthread_mutex_t lock;
} L;

static void *load_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&L.lock);
        int i = L.next++;
        pthread_mutex_unlock(&L.lock);
        if (i >= N_LOAD) return NULL;
        double t0 = now_s();
        if (!classify_one(S.port, "bert", L.texts[i], &L.status[i], &L.c[i]) && L.status[i] == 200) L.status[i] = -1;
        L.latency[i] = now_s() - t0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

Test(triton, load_report, .timeout = 900)
{
    const char *tc = vocab_model(BERT, 500);
    repo_add("bert", tc, "text-classification", NULL);
    serve();
    memset(&L, 0, sizeof L);
    pthread_mutex_init(&L.lock, NULL);
    for (int i = 0; i < N_LOAD; i++) make_text(L.texts[i], sizeof L.texts[i], 1000 + i);
    int st;
    cls warm;
    cr_assert(classify_one(S.port, "bert", L.texts[0], &st, &warm), "warm-up: %d", st);
    pthread_t th[LOAD_THREADS];
    double t0 = now_s();
    for (int i = 0; i < LOAD_THREADS; i++) cr_assert_eq(pthread_create(&th[i], NULL, load_main, NULL), 0);
    for (int i = 0; i < LOAD_THREADS; i++) pthread_join(th[i], NULL);
    double wall = now_s() - t0;
    pthread_mutex_destroy(&L.lock);

    /* the same texts through the library, one at a time in-process */
    vkf_context *ctx = lib_context();
    vkf_model *m = lib_model(ctx, tc);
    vkf_class_score top[3];
    const char *first = L.texts[0];
    cr_assert_eq(vkf_classify_texts(m, &first, NULL, 1, top, 3), VKF_OK, "%s", vkf_last_error(ctx));
    double lib_lat[N_LOAD];
    double t1 = now_s();
    for (int i = 0; i < N_LOAD; i++) {
        const char *t = L.texts[i];
        double s = now_s();
        cr_assert_eq(vkf_classify_texts(m, &t, NULL, 1, top, 3), VKF_OK, "%s", vkf_last_error(ctx));
        lib_lat[i] = now_s() - s;
        cr_assert_eq(L.status[i], 200, "request %d ('%s'): status %d", i, L.texts[i], L.status[i]);
        same_scores(&L.c[i], top, 3, 1e-5, L.texts[i]);
    }
    double lib_wall = now_s() - t1;
    vkf_model_destroy(m);
    vkf_context_destroy(ctx);

    qsort(L.latency, N_LOAD, sizeof(double), cmp_double);
    qsort(lib_lat, N_LOAD, sizeof(double), cmp_double);
    cr_log_info("Triton, %d requests from %d clients: %.1f requests/s, latency p50 %.2f ms, p99 %.2f ms", N_LOAD, LOAD_THREADS,
                N_LOAD / wall, L.latency[N_LOAD / 2] * 1e3, L.latency[N_LOAD * 99 / 100] * 1e3);
    cr_log_info("vkf_classify_texts in-process, one at a time: %.1f texts/s, latency p50 %.2f ms, p99 %.2f ms", N_LOAD / lib_wall,
                lib_lat[N_LOAD / 2] * 1e3, lib_lat[N_LOAD * 99 / 100] * 1e3);
    S.done = true;
}
