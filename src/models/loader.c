/* The shared checkpoint loader: the declared weight table in, the graph's
 * weight set out. Models call no Vulkan: uploads go through graph_weights. */
#include "loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_ELEMS (1u << 20) /* 4 MiB of fp32 per upload */

static model_weight *grow(model_decl *t)
{
    if (!base_grow((void **)&t->v, &t->cap, t->n + 1, sizeof *t->v)) {
        t->failed = true;
        return NULL;
    }
    model_weight *w = &t->v[t->n++];
    memset(w, 0, sizeof *w);
    return w;
}

model_weight *model_decl_fused(model_decl *t, const char *name, const char *const *hf, uint32_t n_parts,
                               model_init init, uint32_t rank, const uint64_t *shape)
{
    model_weight *w = grow(t);
    if (!w) return NULL;
    snprintf(w->name, sizeof w->name, "%s", name);
    w->n_parts = BASE_MIN(n_parts, (uint32_t)MODEL_MAX_PARTS);
    for (uint32_t i = 0; i < w->n_parts; i++) snprintf(w->hf[i], sizeof w->hf[i], "%s", hf[i]);
    w->rank = rank;
    memcpy(w->shape, shape, rank * sizeof *shape);
    w->grank = rank;
    for (uint32_t i = 0; i < rank; i++) w->gshape[i] = (uint32_t)(shape[i] * (i == 0 ? w->n_parts : 1));
    w->init = init;
    return w;
}

model_weight *model_decl_add(model_decl *t, const char *name, const char *hf, model_init init, uint32_t rank,
                             const uint64_t *shape)
{
    return model_decl_fused(t, name, &hf, 1, init, rank, shape);
}

void model_weight_reshape(model_weight *w, uint32_t grank, const uint32_t *gshape)
{
    if (!w) return;
    w->grank = grank;
    memcpy(w->gshape, gshape, grank * sizeof *gshape);
}

const model_weight *model_decl_find(const model_decl *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].name, name)) return &t->v[i];
    return NULL;
}

void model_decl_free(model_decl *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

static uint64_t part_elems(const model_weight *w)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < w->rank; i++) n *= w->shape[i];
    return n;
}

uint64_t model_decl_params(const model_decl *t)
{
    uint64_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!t->v[i].alias_of) n += part_elems(&t->v[i]) * (t->v[i].weight_norm ? 1 : t->v[i].n_parts);
    return n;
}

/* The checkpoint tensor of name: prefix + name, name, then gamma/beta for weight/bias. */
static const st_tensor *lookup(const st_checkpoint *ck, const char *prefix, const char *name)
{
    char full[320];
    for (int spelling = 0; spelling < 2; spelling++) {
        char alt[256];
        const char *n = name;
        if (spelling) {
            size_t l = strlen(name);
            if (l > 7 && !strcmp(name + l - 7, ".weight")) snprintf(alt, sizeof alt, "%.*s.gamma", (int)(l - 7), name);
            else if (l > 5 && !strcmp(name + l - 5, ".bias")) snprintf(alt, sizeof alt, "%.*s.beta", (int)(l - 5), name);
            else break;
            n = alt;
        }
        snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", n);
        const st_tensor *t = st_find(ck, full);
        if (!t && prefix && *prefix) t = st_find(ck, n);
        if (t) return t;
    }
    return NULL;
}

const char *model_find_prefix(const st_checkpoint *ck, const char *const *prefixes, size_t n, const char *probe)
{
    char full[320];
    for (size_t i = 0; i < n; i++) {
        snprintf(full, sizeof full, "%s%s", prefixes[i], probe);
        if (st_find(ck, full)) return prefixes[i];
    }
    return NULL;
}

bool model_ck_has(const st_checkpoint *ck, const char *prefix, const char *name) { return lookup(ck, prefix, name) != NULL; }

static void shape_str(char *buf, size_t cap, uint32_t rank, const uint64_t *shape)
{
    buf[0] = 0;
    for (uint32_t i = 0; i < rank; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
}

/* Deterministic small values: LayerNorm weights near 1, the rest near 0. */
static float random_value(uint64_t *s, model_init init)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    float u = (float)(*s >> 40) / 16777216.0f - 0.5f;
    return init == MODEL_INIT_ONES ? 1.0f + 0.1f * u : init == MODEL_INIT_ZEROS ? 0.0f : 0.04f * u;
}

/* Element i of MarianSinusoidalPositionalEmbedding's table of dim columns:
 * position p, column c < ceil(dim/2): sin(p / 10000^(2c/dim)), after it
 * cos(p / 10000^(2k/dim)) with k = c - ceil(dim/2); in double, as numpy. */
static float sinusoid(uint64_t i, uint64_t dim)
{
    uint64_t p = i / dim, c = i % dim, half = (dim + 1) / 2;
    uint64_t k = c < half ? c : c - half;
    double x = (double)p / pow(10000.0, 2.0 * (double)k / (double)dim);
    return (float)(c < half ? sin(x) : cos(x));
}

/* T5Attention._relative_position_bucket for one relative position, in
 * float32 as torch computes it (log of the ratio, divided by the log of
 * max_distance / max_exact rounded to float, truncated). */
static float rel_bucket(int64_t rel, const uint32_t *arg)
{
    uint32_t nb = arg[0], max_distance = arg[1], ret = 0;
    int64_t n;
    if (arg[2]) {
        nb /= 2;
        if (rel > 0) ret += nb;
        n = rel < 0 ? -rel : rel;
    } else {
        n = rel < 0 ? -rel : 0;
    }
    uint32_t max_exact = nb / 2;
    if (n < max_exact) return (float)(ret + (uint32_t)n);
    float v = logf((float)n / (float)max_exact) / (float)log((double)max_distance / max_exact) * (float)(nb - max_exact);
    int64_t large = (int64_t)max_exact + (int64_t)v;
    if (large > (int64_t)nb - 1) large = nb - 1;
    return (float)(ret + (uint32_t)large);
}

/* make_log_bucket_position of DeBERTa-v2 for one relative position, in
 * float32 as torch computes it; rel itself without buckets. */
float model_deberta_bucket(int64_t rel, uint32_t buckets, uint32_t max_relative)
{
    const uint32_t arg[2] = {buckets, max_relative};
    int64_t mid = arg[0] / 2;
    if (!arg[0] || !mid) return (float)rel;
    int64_t abs_pos = rel < mid && rel > -mid ? mid - 1 : (rel < 0 ? -rel : rel);
    if (abs_pos <= mid) return (float)rel;
    float ratio = logf((float)abs_pos / (float)mid) / logf((float)((double)(arg[1] - 1) / (double)mid));
    float log_pos = ceilf(ratio * (float)(mid - 1)) + (float)mid;
    return rel < 0 ? -log_pos : log_pos;
}

typedef struct upload_state {
    base_diag *d;
    graph_weights *w;
    const model_load_opts *o;
    void *bounce;
    uint64_t done, total;
} upload_state;

/* Elements [first, first + n) of one part, from the checkpoint tensor t or
 * computed / random / zeros when t is NULL, to dst bytes into buf. */
static vkf_status upload_range(upload_state *u, const model_weight *mw, const st_tensor *t, int buf, VkDeviceSize dst, uint64_t first0,
                               uint64_t n, bool zeros, uint64_t *rng)
{
    uint32_t es = graph_dtype_size(u->o->dtype);
    bool f16 = u->o->dtype == GRAPH_F16;
    for (uint64_t done = 0; done < n; done += CHUNK_ELEMS) {
        uint64_t first = first0 + done, count = BASE_MIN((uint64_t)CHUNK_ELEMS, n - done);
        if (t) {
            vkf_status s = st_convert(u->d, t, first, count, f16, u->bounce);
            if (s != VKF_OK) return base_fail_prefix(u->d, s, "%s: ", u->o->ck->files[t->file].path);
        } else {
            int64_t centre = (int64_t)(mw->shape[0] / 2);
            for (uint64_t i = 0; i < count; i++) {
                float v = mw->init == MODEL_INIT_SINUSOIDAL        ? sinusoid(first + i, mw->shape[mw->rank - 1])
                          : mw->init == MODEL_INIT_REL_BUCKETS     ? rel_bucket((int64_t)(first + i) - centre, mw->init_arg)
                          : mw->init == MODEL_INIT_DEBERTA_BUCKETS ? model_deberta_bucket((int64_t)(first + i) - centre, mw->init_arg[0], mw->init_arg[1])
                          : mw->init == MODEL_INIT_MASK_ROWS       ? (float)((first + i) >= mw->shape[1])
                          : zeros                                  ? 0.0f
                                                                   : random_value(rng, mw->init);
                if (f16) ((uint16_t *)u->bounce)[i] = base_f32_to_f16(v);
                else ((float *)u->bounce)[i] = v;
            }
        }
        vkf_status s = graph_weights_write(u->w, buf, dst + done * es, u->bounce, count * es);
        if (s != VKF_OK) return s;
        u->done += count;
        if (u->o->progress) u->o->progress(u->o->progress_user, u->done, u->total);
    }
    return VKF_OK;
}

/* One part: from the checkpoint tensor t, or random / zeros when t is NULL;
 * with deinterleave, its [h][3][n] row blocks to their [3][h][n] places. */
static vkf_status upload_part(upload_state *u, const model_weight *mw, const st_tensor *t, int buf, VkDeviceSize offset,
                              bool zeros, const char *hf)
{
    uint64_t n = part_elems(mw), rng = u->o->seed ^ base_hash64(hf, strlen(hf), BASE_HASH_SEED);
    uint32_t h = mw->deinterleave, es = graph_dtype_size(u->o->dtype);
    if (!h) return upload_range(u, mw, t, buf, offset, 0, n, zeros, &rng);
    uint64_t block = n / (3ull * h); /* elements of one head's Q (or K, V) */
    vkf_status s = VKF_OK;
    for (uint64_t b = 0; b < 3ull * h && s == VKF_OK; b++) {
        uint64_t head = b / 3, which = b % 3;
        s = upload_range(u, mw, t, buf, offset + (which * h + head) * block * es, b * block, block, zeros, &rng);
    }
    return s;
}

/* A weight-normed convolution (wav2vec 2.0's positional conv): v [O, I, K]
 * and g [1, 1, K] read whole, w = v * g[k] / |v[:, :, k]| (the norm over
 * every dim but 2, in double), uploaded as one tensor. */
static vkf_status upload_weight_norm(upload_state *u, const model_weight *mw)
{
    base_diag *d = u->d;
    const st_checkpoint *ck = u->o->ck;
    const st_tensor *v = lookup(ck, u->o->prefix, mw->hf[0]), *g = lookup(ck, u->o->prefix, mw->hf[1]);
    if (!v || !g)
        return base_fail(d, VKF_ERROR_NOT_FOUND, "%s: missing tensor %s%s", ck->files[0].path, u->o->prefix ? u->o->prefix : "",
                         v ? mw->hf[1] : mw->hf[0]);
    uint64_t O = mw->shape[0], I = mw->shape[1], K = mw->shape[2], n = O * I * K;
    if (v->rank != 3 || v->shape[0] != O || v->shape[1] != I || v->shape[2] != K || st_numel(g) != K)
        return base_fail(d, VKF_ERROR_SHAPE, "%s: %s must be [%llu, %llu, %llu] and %s [1, 1, %llu]", ck->files[v->file].path, v->name,
                         (unsigned long long)O, (unsigned long long)I, (unsigned long long)K, g->name, (unsigned long long)K);
    float *vv = malloc(n * sizeof(float)), *gg = malloc(K * sizeof(float));
    double *norm = calloc(K, sizeof(double));
    vkf_status s = vv && gg && norm ? VKF_OK : base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) s = st_convert(d, v, 0, n, false, vv);
    if (s == VKF_OK) s = st_convert(d, g, 0, K, false, gg);
    for (uint64_t i = 0; s == VKF_OK && i < n; i++) norm[i % K] += (double)vv[i] * vv[i];
    for (uint64_t i = 0; s == VKF_OK && i < n; i++) vv[i] = (float)((double)vv[i] * gg[i % K] / sqrt(norm[i % K]));
    uint32_t es = graph_dtype_size(u->o->dtype);
    int buf = -1;
    if (s == VKF_OK) s = graph_weights_alloc(u->w, n * es, mw->name, &buf);
    for (uint64_t first = 0; s == VKF_OK && first < n; first += CHUNK_ELEMS) {
        uint64_t count = BASE_MIN((uint64_t)CHUNK_ELEMS, n - first);
        for (uint64_t i = 0; i < count; i++)
            if (es == 2) ((uint16_t *)u->bounce)[i] = base_f32_to_f16(vv[first + i]);
            else ((float *)u->bounce)[i] = vv[first + i];
        s = graph_weights_write(u->w, buf, first * es, u->bounce, count * es);
        u->done += count;
        if (s == VKF_OK && u->o->progress) u->o->progress(u->o->progress_user, u->done, u->total);
    }
    if (s == VKF_OK) s = graph_weights_add(u->w, mw->name, u->o->dtype, mw->grank, mw->gshape, buf, 0);
    free(vv), free(gg), free(norm);
    return s;
}

vkf_status model_load_weights(base_diag *d, graph_weights *w, const model_decl *t, const model_load_opts *o)
{
    if (t->failed) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory declaring weights");
    upload_state u = {d, w, o, malloc((size_t)CHUNK_ELEMS * 4), 0, model_decl_params(t)};
    if (!u.bounce) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status s = VKF_OK;
    for (size_t i = 0; i < t->n && s == VKF_OK; i++) {
        const model_weight *mw = &t->v[i];
        if (mw->alias_of) {
            const graph_weight_entry *src = graph_weights_find(w, mw->alias_of);
            if (!src) s = base_fail(d, VKF_ERROR_NOT_FOUND, "weight %s: ties to %s, which is not loaded", mw->name, mw->alias_of);
            else s = graph_weights_add(w, mw->name, o->dtype, mw->grank, mw->gshape, src->buf, src->offset);
            continue;
        }
        if (mw->weight_norm && o->ck) {
            s = upload_weight_norm(&u, mw);
            continue;
        }
        uint64_t per = part_elems(mw) * graph_dtype_size(o->dtype);
        uint32_t parts = mw->weight_norm ? 1 : mw->n_parts; /* random weights: one part */
        int buf;
        s = graph_weights_alloc(w, per * parts, mw->name, &buf);
        for (uint32_t k = 0; k < parts && s == VKF_OK; k++) {
            const st_tensor *ct = NULL;
            bool zeros = false;
            if (!mw->hf[k][0]) {
                zeros = true; /* a part of zeros (DeBERTa's K bias) */
            } else if (o->ck) {
                ct = lookup(o->ck, o->prefix, mw->hf[k]);
                if (!ct && !mw->optional) {
                    s = base_fail(d, VKF_ERROR_NOT_FOUND, "%s: missing tensor %s%s", o->ck->files[0].path,
                                  o->prefix ? o->prefix : "", mw->hf[k]);
                    break;
                }
                zeros = !ct;
                bool same = ct && ct->rank == mw->rank;
                for (uint32_t r = 0; same && r < mw->rank; r++) same = ct->shape[r] == mw->shape[r];
                if (ct && !same) {
                    char a[128], b[128];
                    shape_str(a, sizeof a, ct->rank, ct->shape);
                    shape_str(b, sizeof b, mw->rank, mw->shape);
                    s = base_fail(d, VKF_ERROR_SHAPE, "%s: tensor %s has shape [%s], the config implies [%s]",
                                  o->ck->files[ct->file].path, ct->name, a, b);
                    break;
                }
            } else {
                zeros = mw->init == MODEL_INIT_ZEROS;
            }
            s = upload_part(&u, mw, ct, buf, (VkDeviceSize)k * per, zeros, mw->hf[k]);
        }
        if (s == VKF_OK) s = graph_weights_add(w, mw->name, o->dtype, mw->grank, mw->gshape, buf, 0);
    }
    free(u.bounce);
    return s;
}

int model_graph_weight(graph *g, const model_decl *t, const char *name)
{
    const model_weight *w = model_decl_find(t, name);
    if (!w) {
        if (g->error == VKF_OK) g->error = base_fail(g->diag, VKF_ERROR_NOT_FOUND, "graph wants weight %s, which is not declared", name);
        return -1;
    }
    int have = graph_find(g, name); /* a weight used twice (BART's shared embeddings) is one tensor */
    if (have >= 0 && g->t[have].role == GRAPH_WEIGHT) return have;
    return graph_weight(g, name, w->grank, w->gshape);
}

void model_decl_linear(model_decl *t, const char *name, const char *hf, uint64_t out, uint64_t in, bool bias)
{
    char w[160], b[160], nw[64], nb[64];
    snprintf(w, sizeof w, "%s.weight", hf), snprintf(b, sizeof b, "%s.bias", hf);
    snprintf(nw, sizeof nw, "%s.weight", name), snprintf(nb, sizeof nb, "%s.bias", name);
    model_decl_add(t, nw, w, MODEL_INIT_SMALL, 2, (uint64_t[]){out, in});
    if (bias) model_decl_add(t, nb, b, MODEL_INIT_SMALL, 1, (uint64_t[]){out});
}

void model_decl_layernorm(model_decl *t, const char *name, const char *hf, uint64_t n)
{
    char w[160], b[160], nw[64], nb[64];
    snprintf(w, sizeof w, "%s.weight", hf), snprintf(b, sizeof b, "%s.bias", hf);
    snprintf(nw, sizeof nw, "%s.weight", name), snprintf(nb, sizeof nb, "%s.bias", name);
    model_decl_add(t, nw, w, MODEL_INIT_ONES, 1, (uint64_t[]){n});
    model_decl_add(t, nb, b, MODEL_INIT_SMALL, 1, (uint64_t[]){n});
}
