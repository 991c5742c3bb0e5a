/* vkformer.h: models, classification, tensor-level runs. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/io.h"
#include "../models/vit.h"

#define MAX_BATCH_PER_RUN 32

struct vkf_model {
    vkf_context *ctx;
    vk_device *dev;
    vit_model *vit;
    io_preproc pp;
    graph_cache cache;
    vkf_precision precision;
};

static graph *build_vit(void *user, uint32_t batch, uint32_t seq)
{
    (void)seq;
    return vit_build(((vkf_model *)user)->vit, batch);
}

typedef struct progress_relay {
    vkf_progress_fn fn;
    void *user;
    uint32_t bytes_per_element;
} progress_relay;

static void relay_progress(void *user, uint64_t done, uint64_t total)
{
    progress_relay *r = user;
    if (r->fn) r->fn(r->user, done * r->bytes_per_element, total * r->bytes_per_element);
}

vkf_status vkf_model_load(vkf_context *ctx, const char *dir, const vkf_model_desc *desc, vkf_model **out)
{
    static const vkf_model_desc zero;
    if (!ctx || !dir || !out) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_load: NULL argument");
    *out = NULL;
    if (!desc) desc = &zero;
    base_diag *d = &ctx->diag;
    vk_device *dev = ctx->dev;
    vkf_precision prec = desc->precision;
    /* Default: fp16 storage halves the bandwidth on GPUs; CPU drivers convert
     * halves lane by lane, so they keep fp32. */
    if (prec == VKF_PRECISION_DEFAULT) prec = dev->caps.storage16 && !dev->caps.cpu_kernels ? VKF_FP16 : VKF_FP32;
    if (prec == VKF_FP16 && !dev->caps.storage16)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "fp16 precision needs 16-bit storage buffers, which %s lacks",
                         dev->caps.name);
    vkf_model *m = calloc(1, sizeof(*m));
    if (!m) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    m->ctx = ctx;
    m->dev = dev;
    m->precision = prec;
    vit_config cfg;
    vkf_status s = vit_config_load(d, dir, &cfg);
    if (s == VKF_OK) {
        io_preproc defaults = vit_default_preproc(&cfg);
        s = io_preproc_load(d, dir, &defaults, &m->pp);
        if (s != VKF_OK) vit_config_free(&cfg);
    }
    if (s == VKF_OK) {
        st_checkpoint ck;
        s = st_open(d, dir, &ck);
        if (s == VKF_OK) {
            graph_dtype dt = prec == VKF_FP16 ? GRAPH_F16 : GRAPH_F32;
            progress_relay relay = {desc->progress, desc->progress_user, graph_dtype_size(dt)};
            s = vit_create(dev, &cfg, &ck, dt, 0, desc->progress ? relay_progress : NULL, &relay, &m->vit);
            st_close(&ck);
        }
        if (s != VKF_OK) vit_config_free(&cfg);
    }
    if (s != VKF_OK) {
        free(m);
        return s;
    }
    graph_compile_opts opts = {.slots = desc->max_in_flight ? desc->max_in_flight : 2, .profile = desc->profile != 0};
    graph_cache_init(&m->cache, dev, &m->vit->w, &opts, desc->max_variants ? desc->max_variants : 4, build_vit, m);
    *out = m;
    return VKF_OK;
}

void vkf_model_destroy(vkf_model *m)
{
    if (!m) return;
    graph_cache_destroy(&m->cache);
    vit_destroy(m->vit);
    free(m);
}

vkf_status vkf_model_get_info(const vkf_model *m, vkf_model_info *info)
{
    if (!m || !info) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_get_info: NULL argument");
    const vit_config *c = &m->vit->cfg;
    uint32_t np = c->image_size / c->patch_size;
    *info = (vkf_model_info){
        .type = "vit", .precision = m->precision, .image_height = c->image_size, .image_width = c->image_size,
        .channels = c->channels, .num_labels = m->vit->has_classifier ? c->num_labels : 0, .hidden_size = c->hidden,
        .num_layers = c->layers, .seq_len = np * np + 1, .parameters = m->vit->params, .weight_bytes = m->vit->w.bytes,
    };
    return VKF_OK;
}

vkf_status vkf_model_prepare(vkf_model *m, uint32_t batch)
{
    if (!m || batch == 0 || batch > 4096)
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_prepare: bad model or batch size");
    graph_exec *e;
    vkf_status s = graph_cache_get(&m->cache, batch, 0, &e);
    if (s == VKF_OK) graph_cache_release(&m->cache, e);
    return s;
}

const char *vkf_model_label(const vkf_model *m, uint32_t index)
{
    if (!m || !m->vit->has_classifier || index >= m->vit->cfg.num_labels) return NULL;
    return m->vit->cfg.labels[index];
}

/* One inference of `batch` images; outputs read by name (NULL data: skipped). */
static vkf_status run_batch(vkf_model *m, uint32_t batch, const float *pixels, const char *const *names, void *const *data,
                            const uint64_t *bytes, uint32_t n_out)
{
    graph_exec *e;
    vkf_status s = graph_cache_get(&m->cache, batch, 0, &e);
    if (s != VKF_OK) return s;
    const graph *g = graph_exec_graph(e);
    uint32_t slot;
    graph_exec_acquire(e, &slot);
    int in = graph_find(g, "pixel_values");
    s = graph_exec_write(e, slot, in, pixels, graph_numel(&g->t[in]) * 4);
    if (s == VKF_OK) s = graph_exec_submit(e, slot);
    if (s == VKF_OK) s = graph_exec_wait(e, slot);
    for (uint32_t i = 0; i < n_out && s == VKF_OK; i++) {
        int t = graph_find(g, names[i]);
        if (t < 0 || !g->t[t].output)
            s = base_fail(m->dev->diag, VKF_ERROR_NOT_FOUND, "this model has no output \"%s\"", names[i]);
        else if (data[i])
            s = graph_exec_read(e, slot, t, data[i], bytes[i]);
    }
    graph_exec_release(e, slot);
    graph_cache_release(&m->cache, e);
    return s;
}

static vkf_status output_shape(const vkf_model *m, const char *name, uint32_t batch, uint32_t *rank, uint32_t *shape)
{
    const vit_config *c = &m->vit->cfg;
    uint32_t np = c->image_size / c->patch_size;
    if (strcmp(name, "logits") == 0 && m->vit->has_classifier) {
        *rank = 2, shape[0] = batch, shape[1] = c->num_labels;
    } else if (strcmp(name, "pooled") == 0) {
        *rank = 2, shape[0] = batch, shape[1] = c->hidden;
    } else if (strcmp(name, "last_hidden_state") == 0) {
        *rank = 3, shape[0] = batch, shape[1] = np * np + 1, shape[2] = c->hidden;
    } else {
        return base_fail(m->dev->diag, VKF_ERROR_NOT_FOUND, "this model has no output \"%s\" (%s)", name,
                         m->vit->has_classifier ? "logits, pooled, last_hidden_state" : "pooled, last_hidden_state");
    }
    return VKF_OK;
}

vkf_status vkf_model_run(vkf_model *m, const vkf_tensor *inputs, uint32_t n_inputs, vkf_tensor *outputs,
                         uint32_t n_outputs)
{
    if (!m || (n_inputs && !inputs) || (n_outputs && !outputs))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_run: NULL argument");
    base_diag *d = m->dev->diag;
    const vit_config *c = &m->vit->cfg;
    if (n_inputs != 1 || !inputs[0].name || strcmp(inputs[0].name, "pixel_values") != 0 || !inputs[0].data)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "a ViT takes one input, \"pixel_values\" [N, %u, %u, %u]",
                         c->channels, c->image_size, c->image_size);
    const vkf_tensor *in = &inputs[0];
    if (in->rank != 4 || in->shape[1] != c->channels || in->shape[2] != c->image_size || in->shape[3] != c->image_size ||
        in->shape[0] == 0 || in->shape[0] > 4096)
        return base_fail(d, VKF_ERROR_SHAPE, "pixel_values must be [N, %u, %u, %u] with 1 <= N <= 4096", c->channels,
                         c->image_size, c->image_size);
    uint32_t batch = in->shape[0];
    const char *names[8];
    void *data[8];
    uint64_t bytes[8];
    if (n_outputs > 8) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "at most 8 outputs per run");
    for (uint32_t i = 0; i < n_outputs; i++) {
        vkf_tensor *o = &outputs[i];
        if (!o->name) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "output %u has no name", i);
        vkf_status s = output_shape(m, o->name, batch, &o->rank, o->shape);
        if (s != VKF_OK) return s;
        uint64_t n = 1;
        for (uint32_t k = 0; k < o->rank; k++) n *= o->shape[k];
        if (o->data && o->capacity < n * 4)
            return base_fail(d, VKF_ERROR_SHAPE, "output \"%s\" needs %llu bytes, %llu given", o->name,
                             (unsigned long long)(n * 4), (unsigned long long)o->capacity);
        names[i] = o->name;
        data[i] = o->data;
        bytes[i] = n * 4;
    }
    return run_batch(m, batch, in->data, names, data, bytes, n_outputs);
}

vkf_status vkf_top_k(const vkf_model *m, const float *logits, vkf_class_score *top, uint32_t k)
{
    if (!m || !logits || (k && !top)) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_top_k: NULL argument");
    uint32_t n = m->vit->cfg.num_labels;
    if (!m->vit->has_classifier) return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "this model has no classification head");
    double mx = -INFINITY, sum = 0;
    for (uint32_t i = 0; i < n; i++) mx = fmax(mx, logits[i]);
    for (uint32_t i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    k = BASE_MIN(k, n);
    for (uint32_t j = 0; j < k; j++) {
        int best = -1;
        for (uint32_t i = 0; i < n; i++) {
            bool taken = false;
            for (uint32_t q = 0; q < j; q++) taken = taken || top[q].index == i;
            if (!taken && (best < 0 || logits[i] > logits[best])) best = (int)i;
        }
        top[j] = (vkf_class_score){(uint32_t)best, m->vit->cfg.labels[best], (float)(exp((double)logits[best] - mx) / sum),
                                   logits[best]};
    }
    return VKF_OK;
}

vkf_status vkf_image_preprocess_file(vkf_model *m, const char *path, float *pixels)
{
    if (!m || !path || !pixels)
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_image_preprocess_file: NULL argument");
    io_image img;
    vkf_status s = io_image_load(m->dev->diag, path, IO_MAX_PIXELS_DEFAULT, &img);
    if (s != VKF_OK) return s;
    s = io_preprocess(m->dev->diag, &img, &m->pp, m->vit->cfg.image_size, m->vit->cfg.image_size, pixels);
    if (s != VKF_OK) base_fail_prefix(m->dev->diag, s, "%s: ", path);
    io_image_free(&img);
    return s;
}

vkf_status vkf_classify_files(vkf_model *m, const char *const *paths, uint32_t n, vkf_class_score *top, uint32_t k)
{
    if (!m || (n && (!paths || (k && !top))))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_classify_files: NULL argument");
    if (!m->vit->has_classifier)
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "this model has no classification head (a ViTModel checkpoint)");
    const vit_config *c = &m->vit->cfg;
    size_t per = (size_t)c->channels * c->image_size * c->image_size;
    uint32_t chunk = BASE_MIN(n, (uint32_t)MAX_BATCH_PER_RUN);
    float *pixels = malloc(per * chunk * sizeof(float));
    float *logits = malloc((size_t)c->num_labels * chunk * sizeof(float));
    vkf_status s = (pixels && logits) ? VKF_OK : base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t first = 0; first < n && s == VKF_OK; first += chunk) {
        uint32_t b = BASE_MIN(chunk, n - first);
        for (uint32_t i = 0; i < b && s == VKF_OK; i++) s = vkf_image_preprocess_file(m, paths[first + i], pixels + per * i);
        const char *name = "logits";
        void *out = logits;
        uint64_t bytes = (uint64_t)b * c->num_labels * 4;
        if (s == VKF_OK) s = run_batch(m, b, pixels, &name, &out, &bytes, 1);
        for (uint32_t i = 0; i < b && s == VKF_OK; i++) s = vkf_top_k(m, logits + (size_t)i * c->num_labels, top + (size_t)(first + i) * k, k);
    }
    free(pixels);
    free(logits);
    return s;
}

vkf_status vkf_classify_file(vkf_model *m, const char *path, vkf_class_score *top, uint32_t k)
{
    return vkf_classify_files(m, &path, 1, top, k);
}

vkf_status vkf_model_profile(vkf_model *m, char **table)
{
    if (!m || !table) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_model_profile: NULL argument");
    *table = NULL;
    size_t len = 0;
    char *all = NULL;
    pthread_mutex_lock(&m->cache.lock);
    for (uint32_t i = 0; i < m->cache.n; i++) {
        char *t;
        if (graph_exec_profile_table(m->cache.e[i].exec, &t) != VKF_OK) continue;
        size_t add = strlen(t) + 64;
        char *grown = realloc(all, len + add);
        if (grown) {
            all = grown;
            len += (size_t)snprintf(all + len, add, "batch %u:\n%s", m->cache.e[i].batch, t);
        }
        free(t);
    }
    pthread_mutex_unlock(&m->cache.lock);
    if (!all)
        return base_fail(m->dev->diag, VKF_ERROR_INVALID_ARGUMENT,
                         "no profile: load with desc.profile (or VKF_PROFILE=1) and run first");
    *table = all;
    return VKF_OK;
}
