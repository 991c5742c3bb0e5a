/* libtriton_vkformer.so: vkformer as a backend of NVIDIA Triton Inference
 * Server. A model repository entry is MODEL/config.pbtxt with backend
 * "vkformer" and a "task" parameter, and MODEL/<version>/ the Hugging Face
 * directory as it is. Every request of a batch Triton hands to
 * ModelInstanceExecute goes into one batched vkformer call; a request whose
 * input is bad gets its own error and the others their answers. Instances
 * share one vkformer context per Vulkan device (KIND_GPU's device id is the
 * Vulkan device index; other kinds take the "device" parameter, else
 * VKF_DEVICE or the best device) and
 * one loaded model per device. Uses only the public API (vkformer.h).
 *
 * Inputs and outputs per task (shapes with the batch dimension B):
 *   feature-extraction               text BYTES [B,1] -> embeddings FP32 [B,dim]
 *   text-classification, fill-mask   text BYTES [B,1] -> label BYTES [B,K], scores FP32 [B,K]
 *   image-classification             image BYTES [B,1] (an encoded image) -> label, scores [B,K]
 *   zero-shot-classification         text BYTES [B,1], labels BYTES [B,L] -> scores FP32 [B,L], label BYTES [B,1]
 *   zero-shot-image-classification   image BYTES [B,1], labels BYTES [B,L] -> scores [B,L], label [B,1]
 * K: the "top_k" parameter (default 5), at most the model's labels; scores
 * of the zero-shot tasks in the labels' order. A text past the model's
 * positions is its request's error unless the "truncation" parameter is
 * "true" (the default of zero-shot-classification, as in HF). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"
#include "triton_api.h"
#include "vkformer.h"

#define MAX_DEVICES VKFT_MAX_DEVICES
#define DEFAULT_DEVICE MAX_DEVICES /* the slot of "VKF_DEVICE or the best device" */

/* ---- errors and logging ------------------------------------------------------------- */

static TRITONSERVER_Error *error(TRITONSERVER_Error_Code code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static TRITONSERVER_Error *error(TRITONSERVER_Error_Code code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return TRITONSERVER_ErrorNew(code, msg);
}

static void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_info(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    TRITONSERVER_Error *e = TRITONSERVER_LogMessage(TRITONSERVER_LOG_INFO, __FILE__, __LINE__, msg);
    if (e) TRITONSERVER_ErrorDelete(e);
}

#define TRY(call)                                                                                                                          \
    do {                                                                                                                                   \
        TRITONSERVER_Error *e_ = (call);                                                                                                   \
        if (e_) return e_;                                                                                                                 \
    } while (0)

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- contexts: one per device, shared by every model -------------------------------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    vkf_context *ctx;
    uint32_t refs;
} g_ctx[MAX_DEVICES + 1];

static TRITONSERVER_Error *context_get(uint32_t dev, vkf_context **out)
{
    TRITONSERVER_Error *err = NULL;
    pthread_mutex_lock(&g_lock);
    if (!g_ctx[dev].ctx) {
        vkf_context_desc d = {.use_device_index = dev != DEFAULT_DEVICE, .device_index = dev};
        if (vkf_context_create(&d, &g_ctx[dev].ctx) != VKF_OK)
            err = error(TRITONSERVER_ERROR_UNAVAILABLE, "vkformer: no Vulkan device%s: %s", dev == DEFAULT_DEVICE ? "" : " at that index",
                        vkf_last_error(NULL));
    }
    if (!err) g_ctx[dev].refs++, *out = g_ctx[dev].ctx;
    pthread_mutex_unlock(&g_lock);
    return err;
}

static void context_put(uint32_t dev)
{
    pthread_mutex_lock(&g_lock);
    if (g_ctx[dev].refs && !--g_ctx[dev].refs) {
        vkf_context_destroy(g_ctx[dev].ctx);
        g_ctx[dev].ctx = NULL;
    }
    pthread_mutex_unlock(&g_lock);
}

/* ---- models ------------------------------------------------------------------------- */

typedef struct model_state {
    vkft_settings set; /* the task and the parameters */
    vkf_tokenizer *tok; /* text tasks without truncation: to refuse texts past the positions */
    char name[256], dir[4096];
    pthread_mutex_t lock;
    struct {
        vkf_model *m;
        uint32_t refs;
    } dev[MAX_DEVICES + 1];
} model_state;

typedef struct instance_state {
    model_state *ms;
    uint32_t dev;
    vkf_context *ctx;
    vkf_model *m;
    vkf_model_info info;
} instance_state;

static cJSON *tensor_config(const char *name, const char *type, int64_t dim)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "data_type", type);
    cJSON *dims = cJSON_AddArrayToObject(t, "dims");
    cJSON_AddItemToArray(dims, cJSON_CreateNumber((double)dim));
    return t;
}

/* Triton's auto-complete: the task's inputs and outputs where the config
 * has none, and a batch size where it says none. */
static TRITONSERVER_Error *auto_complete(TRITONBACKEND_Model *model, cJSON *cfg, const vkft_task *t)
{
    bool changed = false;
    const cJSON *mbs = cJSON_GetObjectItemCaseSensitive(cfg, "max_batch_size");
    if (!cJSON_IsNumber(mbs) || mbs->valuedouble < 1) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "max_batch_size");
        cJSON_AddNumberToObject(cfg, "max_batch_size", 32);
        changed = true;
    }
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cfg, "input")) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "input");
        cJSON *in = cJSON_AddArrayToObject(cfg, "input");
        cJSON_AddItemToArray(in, tensor_config(vkft_data_input(t), "TYPE_STRING", 1));
        if (t->labels) cJSON_AddItemToArray(in, tensor_config("labels", "TYPE_STRING", -1));
        changed = true;
    }
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cfg, "output")) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "output");
        cJSON *out = cJSON_AddArrayToObject(cfg, "output");
        if (t->kind == T_EMBED) {
            cJSON_AddItemToArray(out, tensor_config("embeddings", "TYPE_FP32", -1));
        } else {
            cJSON_AddItemToArray(out, tensor_config("label", "TYPE_STRING", t->labels ? 1 : -1));
            cJSON_AddItemToArray(out, tensor_config("scores", "TYPE_FP32", -1));
        }
        changed = true;
    }
    if (!changed) return NULL;
    char *json = cJSON_PrintUnformatted(cfg);
    if (!json) return error(TRITONSERVER_ERROR_INTERNAL, "vkformer: out of memory");
    TRITONSERVER_Message *msg;
    TRITONSERVER_Error *err = TRITONSERVER_MessageNewFromSerializedJson(&msg, json, strlen(json));
    free(json);
    if (err) return err;
    err = TRITONBACKEND_ModelSetConfig(model, 1, msg);
    TRITONSERVER_MessageDelete(msg);
    return err;
}

static TRITONSERVER_Error *read_config(TRITONBACKEND_Model *model, model_state *ms)
{
    const char *name, *location;
    uint64_t version;
    TRITONBACKEND_ArtifactType kind;
    TRY(TRITONBACKEND_ModelName(model, &name));
    TRY(TRITONBACKEND_ModelVersion(model, &version));
    TRY(TRITONBACKEND_ModelRepository(model, &kind, &location));
    snprintf(ms->name, sizeof ms->name, "%s", name);
    if (kind != TRITONBACKEND_ARTIFACT_FILESYSTEM)
        return error(TRITONSERVER_ERROR_UNSUPPORTED, "vkformer: model %s: only a local model repository is supported", name);
    snprintf(ms->dir, sizeof ms->dir, "%s/%llu", location, (unsigned long long)version);
    TRITONSERVER_Message *msg;
    TRY(TRITONBACKEND_ModelConfig(model, 1, &msg));
    const char *json;
    size_t size;
    TRITONSERVER_Error *err = TRITONSERVER_MessageSerializeToJson(msg, &json, &size);
    cJSON *cfg = err ? NULL : cJSON_ParseWithLength(json, size);
    TRITONSERVER_MessageDelete(msg);
    if (err) return err;
    if (!cfg) return error(TRITONSERVER_ERROR_INTERNAL, "vkformer: model %s: the server's config is not JSON", name);
    char why[1024];
    if (vkft_read_settings(cfg, &ms->set, why, sizeof why)) {
        cJSON_Delete(cfg);
        return error(TRITONSERVER_ERROR_INVALID_ARG, "vkformer: model %s: %s", name, why);
    }
    bool complete = false;
    err = TRITONBACKEND_ModelAutoCompleteConfig(model, &complete);
    if (!err && complete) err = auto_complete(model, cfg, ms->set.task);
    if (!err) {
        const cJSON *mbs = cJSON_GetObjectItemCaseSensitive(cfg, "max_batch_size");
        if (!complete && (!cJSON_IsNumber(mbs) || mbs->valuedouble < 1))
            err = error(TRITONSERVER_ERROR_INVALID_ARG, "vkformer: model %s: max_batch_size must be at least 1 (inputs carry a batch dimension)",
                        name);
    }
    cJSON_Delete(cfg);
    return err;
}

TRITONSERVER_Error *TRITONBACKEND_Initialize(TRITONBACKEND_Backend *backend)
{
    (void)backend;
    uint32_t major, minor;
    TRY(TRITONBACKEND_ApiVersion(&major, &minor));
    if (major != VKF_TRITON_BACKEND_API_MAJOR || minor < VKF_TRITON_BACKEND_API_MINOR)
        return error(TRITONSERVER_ERROR_UNSUPPORTED, "vkformer: this server's backend API is %u.%u; vkformer %s needs %d.%d or a later 1.x",
                     major, minor, vkf_version_string(), VKF_TRITON_BACKEND_API_MAJOR, VKF_TRITON_BACKEND_API_MINOR);
    log_info("vkformer %s backend (Triton backend API %u.%u)", vkf_version_string(), major, minor);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_Finalize(TRITONBACKEND_Backend *backend)
{
    (void)backend;
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model *model)
{
    model_state *ms = calloc(1, sizeof *ms);
    if (!ms) return error(TRITONSERVER_ERROR_INTERNAL, "vkformer: out of memory");
    pthread_mutex_init(&ms->lock, NULL);
    TRITONSERVER_Error *err = read_config(model, ms);
    if (!err && !ms->set.truncation && !ms->set.task->image && vkf_tokenizer_load(ms->dir, &ms->tok) != VKF_OK)
        err = error(TRITONSERVER_ERROR_INVALID_ARG, "vkformer: model %s: %s", ms->name, vkf_last_error(NULL));
    if (!err) err = TRITONBACKEND_ModelSetState(model, ms);
    if (err) {
        vkf_tokenizer_destroy(ms->tok);
        pthread_mutex_destroy(&ms->lock);
        free(ms);
        return err;
    }
    log_info("vkformer: model %s: %s from %s", ms->name, ms->set.task->name, ms->dir);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model *model)
{
    void *p;
    TRY(TRITONBACKEND_ModelState(model, &p));
    model_state *ms = p;
    if (!ms) return NULL; /* Triton finalizes a model whose initialize failed too */
    vkf_tokenizer_destroy(ms->tok);
    pthread_mutex_destroy(&ms->lock);
    free(ms);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceInitialize(TRITONBACKEND_ModelInstance *instance)
{
    TRITONBACKEND_Model *model;
    TRITONSERVER_InstanceGroupKind kind;
    int32_t id = 0;
    void *p;
    TRY(TRITONBACKEND_ModelInstanceModel(instance, &model));
    TRY(TRITONBACKEND_ModelState(model, &p));
    TRY(TRITONBACKEND_ModelInstanceKind(instance, &kind));
    if (kind == TRITONSERVER_INSTANCEGROUPKIND_GPU) TRY(TRITONBACKEND_ModelInstanceDeviceId(instance, &id));
    model_state *ms = p;
    if (kind == TRITONSERVER_INSTANCEGROUPKIND_GPU && (id < 0 || id >= MAX_DEVICES))
        return error(TRITONSERVER_ERROR_INVALID_ARG, "vkformer: model %s: device %d is past the %d supported", ms->name, id, MAX_DEVICES);
    instance_state *is = calloc(1, sizeof *is);
    if (!is) return error(TRITONSERVER_ERROR_INTERNAL, "vkformer: out of memory");
    is->ms = ms;
    is->dev = kind == TRITONSERVER_INSTANCEGROUPKIND_GPU ? (uint32_t)id : ms->set.device >= 0 ? (uint32_t)ms->set.device : DEFAULT_DEVICE;
    TRITONSERVER_Error *err = context_get(is->dev, &is->ctx);
    if (err) {
        free(is);
        return err;
    }
    /* one model per device, shared by the device's instances (vkf_model is thread-safe) */
    pthread_mutex_lock(&ms->lock);
    if (!ms->dev[is->dev].m) {
        vkf_model_desc d = {.task = ms->set.task->check, .max_in_flight = 4};
        if (vkf_model_load(is->ctx, ms->dir, &d, &ms->dev[is->dev].m) != VKF_OK)
            err = error(TRITONSERVER_ERROR_INVALID_ARG, "vkformer: model %s: %s", ms->name, vkf_last_error(is->ctx));
    }
    if (!err) ms->dev[is->dev].refs++, is->m = ms->dev[is->dev].m;
    pthread_mutex_unlock(&ms->lock);
    if (!err) vkf_model_get_info(is->m, &is->info);
    if (!err && ms->set.task->kind == T_ZS_TEXT && is->info.num_labels < 2)
        err = error(TRITONSERVER_ERROR_INVALID_ARG, "vkformer: model %s: zero-shot-classification needs an NLI classifier", ms->name);
    if (!err) err = TRITONBACKEND_ModelInstanceSetState(instance, is);
    if (err) {
        context_put(is->dev);
        free(is);
        return err;
    }
    vkf_device_info dev;
    vkf_context_device(is->ctx, &dev);
    log_info("vkformer: model %s: %s (%s) on %s", ms->name, is->info.type, is->info.task, dev.name);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceFinalize(TRITONBACKEND_ModelInstance *instance)
{
    void *p;
    TRY(TRITONBACKEND_ModelInstanceState(instance, &p));
    instance_state *is = p;
    if (!is) return NULL; /* its initialize failed */
    model_state *ms = is->ms;
    pthread_mutex_lock(&ms->lock);
    if (!--ms->dev[is->dev].refs) {
        vkf_model_destroy(ms->dev[is->dev].m);
        ms->dev[is->dev].m = NULL;
    }
    pthread_mutex_unlock(&ms->lock);
    context_put(is->dev);
    free(is);
    return NULL;
}

/* ---- requests ----------------------------------------------------------------------- */

typedef struct req {
    TRITONBACKEND_Request *r;
    TRITONSERVER_Error *err;
    uint32_t n;            /* items (the batch dimension) */
    char **items;          /* n NUL-terminated texts or encoded images */
    size_t *lens;
    char **labels;         /* n * n_labels */
    uint32_t n_labels;
    float *scores;         /* n * k (or n * n_labels), or n * dim embeddings */
    const char **names;    /* n * k labels of the scores (owned by the model or labels) */
} req;

static void req_free(req *q)
{
    for (uint32_t i = 0; q->items && i < q->n; i++) free(q->items[i]);
    for (uint32_t i = 0; q->labels && i < q->n * q->n_labels; i++) free(q->labels[i]);
    free(q->items), free(q->lens), free(q->labels), free(q->scores), free((void *)q->names);
}

/* A BYTES input of shape [n, per]: its n * per elements, each a 4-byte
 * little-endian length and the bytes, copied NUL-terminated. */
static TRITONSERVER_Error *read_bytes(TRITONBACKEND_Request *r, const char *name, uint32_t *n, uint32_t *per, char ***out, size_t **lens)
{
    TRITONBACKEND_Input *in;
    if (TRITONBACKEND_RequestInput(r, name, &in)) return error(TRITONSERVER_ERROR_INVALID_ARG, "missing input \"%s\"", name);
    const char *nm;
    TRITONSERVER_DataType type;
    const int64_t *shape;
    uint32_t dims, buffers;
    uint64_t size;
    TRY(TRITONBACKEND_InputProperties(in, &nm, &type, &shape, &dims, &size, &buffers));
    if (type != TRITONSERVER_TYPE_BYTES) return error(TRITONSERVER_ERROR_INVALID_ARG, "input \"%s\" must be BYTES", name);
    if (dims != 2 || shape[0] < 1 || shape[0] > 65536 || shape[1] < 1 || shape[1] > 65536 || (per && *per && shape[1] != *per))
        return error(TRITONSERVER_ERROR_INVALID_ARG, "input \"%s\" must have a shape [batch >= 1, %s]", name, per && *per ? "1" : "labels >= 1");
    if (n && *n && (uint32_t)shape[0] != *n)
        return error(TRITONSERVER_ERROR_INVALID_ARG, "input \"%s\" has %lld rows for %u items", name, (long long)shape[0], *n);
    uint64_t count = (uint64_t)shape[0] * (uint64_t)shape[1];
    /* the buffers, joined */
    char *all = malloc(size + 1), *w = all;
    if (!all) return error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    for (uint32_t b = 0; b < buffers; b++) {
        const void *buf;
        uint64_t bs;
        TRITONSERVER_MemoryType mt = TRITONSERVER_MEMORY_CPU;
        int64_t mid = 0;
        TRITONSERVER_Error *e = TRITONBACKEND_InputBuffer(in, b, &buf, &bs, &mt, &mid);
        if (!e && (mt == TRITONSERVER_MEMORY_GPU || (uint64_t)(w - all) + bs > size))
            e = error(TRITONSERVER_ERROR_INVALID_ARG, "input \"%s\": a buffer in GPU memory or past its size", name);
        if (e) {
            free(all);
            return e;
        }
        memcpy(w, buf, bs), w += bs;
    }
    char **items;
    size_t *ls;
    uint64_t bad = 0;
    int rc = vkft_split_bytes((const unsigned char *)all, (size_t)(w - all), count, &items, &ls, &bad);
    free(all);
    if (rc < 0) return error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    if (rc > 0 && bad == count) return error(TRITONSERVER_ERROR_INVALID_ARG, "input \"%s\": bytes follow its %llu elements", name, (unsigned long long)count);
    if (rc > 0) return error(TRITONSERVER_ERROR_INVALID_ARG, "input \"%s\": element %llu is cut short", name, (unsigned long long)bad);
    if (n) *n = (uint32_t)shape[0];
    if (per) *per = (uint32_t)shape[1];
    *out = items;
    if (lens) *lens = ls;
    else free(ls);
    return NULL;
}

static TRITONSERVER_Error *read_request(const model_state *ms, req *q)
{
    uint32_t count;
    TRY(TRITONBACKEND_RequestInputCount(q->r, &count));
    const vkft_task *t = ms->set.task;
    uint32_t want = t->labels ? 2 : 1, one = 1;
    for (uint32_t i = 0; i < count; i++) {
        TRITONBACKEND_Input *in;
        const char *name;
        TRY(TRITONBACKEND_RequestInputByIndex(q->r, i, &in));
        TRY(TRITONBACKEND_InputProperties(in, &name, NULL, NULL, NULL, NULL, NULL));
        if (strcmp(name, vkft_data_input(t)) && !(t->labels && !strcmp(name, "labels")))
            return error(TRITONSERVER_ERROR_INVALID_ARG, "unexpected input \"%s\": %s takes \"%s\"%s", name, t->name, vkft_data_input(t),
                         t->labels ? " and \"labels\"" : "");
    }
    if (count != want)
        return error(TRITONSERVER_ERROR_INVALID_ARG, "%s takes \"%s\"%s", t->name, vkft_data_input(t), t->labels ? " and \"labels\"" : "");
    TRY(read_bytes(q->r, vkft_data_input(t), &q->n, &one, &q->items, &q->lens));
    if (t->labels) {
        uint32_t n = q->n;
        TRY(read_bytes(q->r, "labels", &n, &q->n_labels, &q->labels, NULL));
        for (uint32_t i = 0; i < q->n * q->n_labels; i++)
            if (!q->labels[i][0]) return error(TRITONSERVER_ERROR_INVALID_ARG, "label %u is empty", i);
    }
    for (uint32_t i = 0; !t->image && i < q->n; i++)
        if (strlen(q->items[i]) != q->lens[i]) return error(TRITONSERVER_ERROR_INVALID_ARG, "text %u holds a NUL byte", i);
    return NULL;
}

/* Without truncation: a text whose tokens (or a zero-shot pair's) pass the
 * model's positions is the request's error, as HF's pipelines fail on it. */
static TRITONSERVER_Error *check_lengths(const instance_state *is, const req *q)
{
    const model_state *ms = is->ms;
    uint32_t pairs = ms->set.task->kind == T_ZS_TEXT ? q->n_labels : 1;
    for (uint32_t i = 0; ms->tok && i < q->n; i++)
        for (uint32_t l = 0; l < pairs; l++) {
            char *pair = ms->set.task->kind == T_ZS_TEXT ? vkft_fill_template(ms->set.template_, q->labels[(size_t)i * pairs + l]) : NULL;
            if (ms->set.task->kind == T_ZS_TEXT && !pair) return error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
            vkf_encoding enc;
            vkf_status st = vkf_tokenizer_encode(ms->tok, q->items[i], q->lens[i], pair, pair ? strlen(pair) : 0, NULL, &enc);
            free(pair);
            if (st != VKF_OK) return error(TRITONSERVER_ERROR_INVALID_ARG, "text %u: %s", i, vkf_last_error(NULL));
            uint32_t len = enc.length;
            vkf_encoding_free(&enc);
            if (len > is->info.max_positions)
                return error(TRITONSERVER_ERROR_INVALID_ARG,
                             "text %u%s is %u tokens, past the model's %u positions (the model's parameter truncation \"true\" cuts it)", i,
                             pairs > 1 ? " with a label" : "", len, is->info.max_positions);
        }
    return NULL;
}

/* ---- the tasks: every request's items in batched calls --------------------------------- */

static TRITONSERVER_Error *lib_error(const instance_state *is, const char *what)
{
    return error(TRITONSERVER_ERROR_INVALID_ARG, "%s: %s", what, vkf_last_error(is->ctx));
}

static uint32_t top_k(const instance_state *is) { return is->ms->set.top_k < is->info.num_labels ? is->ms->set.top_k : is->info.num_labels; }

/* Scores and names from class scores, k per item. */
static TRITONSERVER_Error *take_scores(req *q, const vkf_class_score *s, uint32_t k)
{
    q->scores = malloc((size_t)q->n * k * sizeof(float) + 1);
    q->names = malloc((size_t)q->n * k * sizeof(char *) + 1);
    if (!q->scores || !q->names) return error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    for (size_t i = 0; i < (size_t)q->n * k; i++) q->scores[i] = s[i].prob, q->names[i] = s[i].label;
    return NULL;
}

/* Text items of several requests in one call; when it fails, each request
 * alone, so that only the bad one gets the error. */
static void run_texts(instance_state *is, req *qs, uint32_t nq, TRITONSERVER_Error *(*fn)(instance_state *, req **, uint32_t))
{
    req **all = malloc(nq * sizeof *all);
    uint32_t n = 0;
    for (uint32_t i = 0; all && i < nq; i++)
        if (!qs[i].err) all[n++] = &qs[i];
    TRITONSERVER_Error *e = all ? fn(is, all, n) : error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    if (e && n > 1) {
        TRITONSERVER_ErrorDelete(e);
        for (uint32_t i = 0; i < n; i++) {
            req *q = all[i]; /* what the failed call gave it, dropped */
            free(q->scores), free((void *)q->names), q->scores = NULL, q->names = NULL;
            if (is->ms->set.task->kind == T_FILL_MASK) {
                for (uint32_t j = 0; q->labels && j < q->n * q->n_labels; j++) free(q->labels[j]);
                free(q->labels), q->labels = NULL, q->n_labels = 0;
            }
            q->err = fn(is, &all[i], 1);
        }
    } else if (e) {
        for (uint32_t i = 0; i < n; i++) all[i]->err = i ? error(TRITONSERVER_ERROR_INTERNAL, "%s", TRITONSERVER_ErrorMessage(e)) : e;
        if (!n) TRITONSERVER_ErrorDelete(e);
    }
    free(all);
}

/* The texts of requests qs[0..n) gathered in one array. */
static const char **gather(req **qs, uint32_t n, uint32_t *total)
{
    *total = 0;
    for (uint32_t i = 0; i < n; i++) *total += qs[i]->n;
    const char **texts = malloc(*total * sizeof *texts + 1);
    uint32_t t = 0;
    for (uint32_t i = 0; texts && i < n; i++)
        for (uint32_t j = 0; j < qs[i]->n; j++) texts[t++] = qs[i]->items[j];
    return texts;
}

static TRITONSERVER_Error *do_embed(instance_state *is, req **qs, uint32_t n)
{
    uint32_t total, dim = is->info.embedding_size;
    const char **texts = gather(qs, n, &total);
    float *out = malloc((size_t)total * dim * sizeof(float) + 1);
    TRITONSERVER_Error *e = texts && out ? NULL : error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    if (!e && vkf_embed(is->m, texts, total, NULL, out) != VKF_OK) e = lib_error(is, "feature-extraction");
    for (uint32_t i = 0, t = 0; !e && i < n; t += qs[i]->n, i++) {
        qs[i]->scores = malloc((size_t)qs[i]->n * dim * sizeof(float));
        if (!qs[i]->scores) e = error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
        else memcpy(qs[i]->scores, out + (size_t)t * dim, (size_t)qs[i]->n * dim * sizeof(float));
    }
    free(texts), free(out);
    return e;
}

static TRITONSERVER_Error *do_text_cls(instance_state *is, req **qs, uint32_t n)
{
    uint32_t total, k = top_k(is);
    const char **texts = gather(qs, n, &total);
    vkf_class_score *s = malloc((size_t)total * k * sizeof *s + 1);
    TRITONSERVER_Error *e = texts && s ? NULL : error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    if (!e && vkf_classify_texts(is->m, texts, NULL, total, s, k) != VKF_OK) e = lib_error(is, "text-classification");
    for (uint32_t i = 0, t = 0; !e && i < n; t += qs[i]->n, i++) e = take_scores(qs[i], s + (size_t)t * k, k);
    free(texts), free(s);
    return e;
}

static TRITONSERVER_Error *do_fill_mask(instance_state *is, req **qs, uint32_t n)
{
    uint32_t k = is->ms->set.top_k, cap = k * 64;
    vkf_fill_mask_result *r = malloc(cap * sizeof *r);
    TRITONSERVER_Error *e = r ? NULL : error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    for (uint32_t i = 0; !e && i < n; i++) {
        req *q = qs[i];
        q->scores = malloc((size_t)q->n * k * sizeof(float));
        q->labels = calloc((size_t)q->n * k, sizeof(char *)); /* the token strings, owned */
        q->names = malloc((size_t)q->n * k * sizeof(char *));
        if (!q->scores || !q->labels || !q->names) e = error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
        q->n_labels = k;
        for (uint32_t j = 0; !e && j < q->n; j++) {
            uint32_t count;
            if (vkf_fill_mask(is->m, q->items[j], k, r, cap, &count) != VKF_OK) e = lib_error(is, "fill-mask");
            for (uint32_t c = 0; !e && c < k; c++) { /* the first mask token's */
                size_t o = (size_t)j * k + c;
                q->scores[o] = c < count ? r[c].score : 0;
                q->labels[o] = strdup(c < count ? r[c].token_str : "");
                q->names[o] = q->labels[o];
                if (!q->labels[o]) e = error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
            }
        }
    }
    free(r);
    return e;
}

static TRITONSERVER_Error *do_zs_text(instance_state *is, req **qs, uint32_t n)
{
    TRITONSERVER_Error *e = NULL;
    for (uint32_t i = 0; !e && i < n; i++) {
        req *q = qs[i];
        uint32_t L = q->n_labels;
        vkf_class_score *s = malloc(L * sizeof *s);
        q->scores = malloc((size_t)q->n * L * sizeof(float));
        q->names = malloc((size_t)q->n * sizeof(char *));
        if (!s || !q->scores || !q->names) e = error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
        for (uint32_t j = 0; !e && j < q->n; j++) {
            char *const *labels = q->labels + (size_t)j * L;
            if (vkf_zero_shot_text(is->m, q->items[j], (const char *const *)labels, L, is->ms->set.template_, is->ms->set.multi_label, s) != VKF_OK)
                e = lib_error(is, "zero-shot-classification");
            for (uint32_t c = 0; !e && c < L; c++) /* back into the labels' order */
                for (uint32_t l = 0; l < L; l++)
                    if (s[c].label == labels[l]) q->scores[(size_t)j * L + l] = s[c].prob;
            if (!e) q->names[j] = s[0].label;
        }
        free(s);
    }
    return e;
}

/* Encoded images into pixels, per request (an image that is not one fails its request only). */
static float *decode_images(instance_state *is, req *qs, uint32_t nq, uint32_t *total)
{
    size_t px = (size_t)is->info.channels * is->info.image_height * is->info.image_width;
    *total = 0;
    for (uint32_t i = 0; i < nq; i++) *total += qs[i].err ? 0 : qs[i].n;
    float *pixels = malloc(px * *total * sizeof(float) + 1);
    uint32_t t = 0;
    for (uint32_t i = 0; pixels && i < nq; i++) {
        for (uint32_t j = 0; !qs[i].err && j < qs[i].n; j++)
            if (vkf_image_preprocess_memory(is->m, qs[i].items[j], qs[i].lens[j], pixels + px * (t + j)) != VKF_OK)
                qs[i].err = error(TRITONSERVER_ERROR_INVALID_ARG, "image %u: %s", j, vkf_last_error(is->ctx));
        if (!qs[i].err) t += qs[i].n;
    }
    *total = t;
    return pixels;
}

static void do_images(instance_state *is, req *qs, uint32_t nq)
{
    uint32_t total;
    float *pixels = decode_images(is, qs, nq, &total);
    size_t px = (size_t)is->info.channels * is->info.image_height * is->info.image_width;
    uint32_t k = top_k(is), L = is->info.num_labels, E = is->info.embedding_size;
    bool zs = is->ms->set.task->kind == T_ZS_IMAGE;
    uint32_t width = zs ? E : L;
    float *out = malloc((size_t)total * width * sizeof(float) + 1);
    TRITONSERVER_Error *e = pixels && out ? NULL : error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    for (uint32_t first = 0; !e && first < total; first += 32) { /* at most 32 images a run */
        uint32_t b = total - first < 32 ? total - first : 32;
        vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {b, is->info.channels, is->info.image_height, is->info.image_width},
                         .data = pixels + px * first, .dtype = VKF_F32};
        vkf_tensor o = {.name = zs ? "image_embeds" : "logits", .data = out + (size_t)first * width, .capacity = (uint64_t)b * width * 4};
        if (vkf_model_run(is->m, &in, 1, &o, 1) != VKF_OK) e = lib_error(is, is->ms->set.task->name);
    }
    vkf_class_score *s = malloc(((size_t)total * L + 1) * sizeof *s);
    if (!e && !s) e = error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    for (uint32_t i = 0, t = 0; !e && i < nq; i++) {
        req *q = &qs[i];
        if (q->err) continue;
        if (!zs) {
            for (uint32_t j = 0; j < q->n; j++) vkf_top_k(is->m, out + (size_t)(t + j) * L, s + (size_t)j * k, k);
            q->err = take_scores(q, s, k);
        } else { /* the request's labels embedded once, against each of its images */
            uint32_t nl = q->n_labels;
            char **texts = calloc(nl, sizeof *texts);
            float *temb = malloc((size_t)nl * E * sizeof(float));
            q->scores = malloc((size_t)q->n * nl * sizeof(float));
            q->names = malloc((size_t)q->n * sizeof(char *));
            if (!texts || !temb || !q->scores || !q->names) q->err = error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
            for (uint32_t j = 0; !q->err && j < q->n; j++) {
                char *const *labels = q->labels + (size_t)j * nl;
                for (uint32_t l = 0; !q->err && l < nl; l++) {
                    free(texts[l]);
                    if (!(texts[l] = vkft_fill_template(is->ms->set.template_, labels[l])))
                        q->err = error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
                }
                if (!q->err && vkf_embed(is->m, (const char *const *)texts, nl, NULL, temb) != VKF_OK) q->err = lib_error(is, "labels");
                if (!q->err && vkf_zero_shot_scores(is->m, out + (size_t)(t + j) * E, 1, temb, nl, q->scores + (size_t)j * nl) != VKF_OK)
                    q->err = lib_error(is, "zero-shot-image-classification");
                uint32_t best = 0;
                for (uint32_t l = 1; !q->err && l < nl; l++)
                    if (q->scores[(size_t)j * nl + l] > q->scores[(size_t)j * nl + best]) best = l;
                if (!q->err) q->names[j] = labels[best];
            }
            for (uint32_t l = 0; texts && l < nl; l++) free(texts[l]);
            free(texts), free(temb);
        }
        t += q->n;
    }
    for (uint32_t i = 0; e && i < nq; i++)
        if (!qs[i].err) qs[i].err = error(TRITONSERVER_ERROR_INTERNAL, "%s", TRITONSERVER_ErrorMessage(e));
    if (e) TRITONSERVER_ErrorDelete(e);
    free(pixels), free(out), free(s);
}

/* ---- responses ---------------------------------------------------------------------- */

static TRITONSERVER_Error *add_output(TRITONBACKEND_Response *resp, const char *name, TRITONSERVER_DataType type, int64_t rows,
                                      int64_t cols, const void *data, size_t bytes)
{
    TRITONBACKEND_Output *o;
    int64_t shape[2] = {rows, cols};
    TRY(TRITONBACKEND_ResponseOutput(resp, &o, name, type, shape, 2));
    void *buf;
    TRITONSERVER_MemoryType mt = TRITONSERVER_MEMORY_CPU;
    int64_t id = 0;
    TRY(TRITONBACKEND_OutputBuffer(o, &buf, bytes, &mt, &id));
    if (mt == TRITONSERVER_MEMORY_GPU) return error(TRITONSERVER_ERROR_INTERNAL, "vkformer: the server gave an output buffer in GPU memory");
    memcpy(buf, data, bytes);
    return NULL;
}

/* Strings as BYTES elements: a 4-byte little-endian length, then the bytes. */
static TRITONSERVER_Error *add_strings(TRITONBACKEND_Response *resp, const char *name, int64_t rows, int64_t cols, const char *const *s)
{
    size_t bytes = 0, n = (size_t)(rows * cols);
    for (size_t i = 0; i < n; i++) bytes += 4 + strlen(s[i]);
    unsigned char *buf = malloc(bytes + 1), *w = buf;
    if (!buf) return error(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)strlen(s[i]);
        w[0] = (unsigned char)l, w[1] = (unsigned char)(l >> 8), w[2] = (unsigned char)(l >> 16), w[3] = (unsigned char)(l >> 24);
        memcpy(w + 4, s[i], l), w += 4 + l;
    }
    TRITONSERVER_Error *e = add_output(resp, name, TRITONSERVER_TYPE_BYTES, rows, cols, buf, bytes);
    free(buf);
    return e;
}

static TRITONSERVER_Error *respond(const instance_state *is, req *q, TRITONBACKEND_Response *resp)
{
    const vkft_task *t = is->ms->set.task;
    int64_t n = q->n;
    if (t->kind == T_EMBED)
        return add_output(resp, "embeddings", TRITONSERVER_TYPE_FP32, n, is->info.embedding_size, q->scores,
                          (size_t)n * is->info.embedding_size * sizeof(float));
    int64_t k = t->labels ? q->n_labels : t->kind == T_FILL_MASK ? is->ms->set.top_k : top_k(is);
    TRY(add_output(resp, "scores", TRITONSERVER_TYPE_FP32, n, k, q->scores, (size_t)(n * k) * sizeof(float)));
    return add_strings(resp, "label", n, t->labels ? 1 : k, q->names);
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance *instance, TRITONBACKEND_Request **requests,
                                                       const uint32_t request_count)
{
    uint64_t exec_start = now_ns();
    void *p;
    TRY(TRITONBACKEND_ModelInstanceState(instance, &p));
    instance_state *is = p;
    req *qs = calloc(request_count ? request_count : 1, sizeof *qs);
    if (!qs) return error(TRITONSERVER_ERROR_INTERNAL, "vkformer: out of memory");
    uint64_t items = 0;
    for (uint32_t i = 0; i < request_count; i++) {
        qs[i].r = requests[i];
        qs[i].err = read_request(is->ms, &qs[i]);
        if (!qs[i].err) qs[i].err = check_lengths(is, &qs[i]);
        if (!qs[i].err) items += qs[i].n;
    }
    uint64_t compute_start = now_ns();
    switch (is->ms->set.task->kind) {
    case T_EMBED: run_texts(is, qs, request_count, do_embed); break;
    case T_TEXT_CLS: run_texts(is, qs, request_count, do_text_cls); break;
    case T_FILL_MASK: run_texts(is, qs, request_count, do_fill_mask); break;
    case T_ZS_TEXT: run_texts(is, qs, request_count, do_zs_text); break;
    case T_IMAGE_CLS:
    case T_ZS_IMAGE: do_images(is, qs, request_count); break;
    }
    uint64_t compute_end = now_ns();
    for (uint32_t i = 0; i < request_count; i++) {
        req *q = &qs[i];
        TRITONBACKEND_Response *resp = NULL;
        TRITONSERVER_Error *e = TRITONBACKEND_ResponseNew(&resp, q->r);
        if (!e && !q->err) q->err = respond(is, q, resp);
        bool ok = !e && !q->err;
        if (!e) e = TRITONBACKEND_ResponseSend(resp, TRITONSERVER_RESPONSE_COMPLETE_FINAL, q->err); /* takes q->err */
        else if (q->err) TRITONSERVER_ErrorDelete(q->err);
        if (e) {
            log_info("vkformer: model %s: a response could not be sent: %s", is->ms->name, TRITONSERVER_ErrorMessage(e));
            TRITONSERVER_ErrorDelete(e);
        }
        uint64_t exec_end = now_ns();
        e = TRITONBACKEND_ModelInstanceReportStatistics(instance, q->r, ok, exec_start, compute_start, compute_end, exec_end);
        if (e) TRITONSERVER_ErrorDelete(e);
        e = TRITONBACKEND_RequestRelease(q->r, TRITONSERVER_REQUEST_RELEASE_ALL);
        if (e) TRITONSERVER_ErrorDelete(e);
        req_free(q);
    }
    if (items) {
        TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceReportBatchStatistics(instance, items, exec_start, compute_start, compute_end, now_ns());
        if (e) TRITONSERVER_ErrorDelete(e);
    }
    free(qs);
    return NULL;
}
