/* Compile a graph once (memory, pipelines, descriptor sets, one recorded
 * command buffer per slot) and run it many times (write inputs, submit,
 * wait, read outputs: no Vulkan object creation, descriptor update or
 * recording on that path). */
#define _POSIX_C_SOURCE 200809L
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLOTS GRAPH_MAX_SLOTS

typedef struct exec_slot {
    vk_buf arena;
    vk_buf *own;      /* per tensor: the input/output buffer (block == NULL if none) */
    vk_buf *staging;  /* per tensor: host-visible copy when `own` is not mappable */
    vk_buf meta;
    vk_stream stream;
    bool busy, submitted;
    uint32_t *query_node; /* profile: node of each timestamp query */
} exec_slot;

struct graph_arenas {
    vk_device *dev;
    uint32_t n;
    uint64_t bytes;
    vk_buf arena[MAX_SLOTS];
    bool busy[MAX_SLOTS];
    int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

struct graph_exec {
    vk_device *dev;
    graph_arenas *shared; /* NULL: the arenas are the slots' own */
    graph *g;
    const graph_weights *w;
    graph_plan plan;
    const graph_weights *state;
    op_ref *weight_ref; /* per tensor: weights and state */
    exec_slot slot[MAX_SLOTS];
    uint32_t n_slots;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool profile;
    double *node_us;      /* profile: summed per node */
    uint32_t profiled_runs;
    graph_exec_stats stats;
};

const graph *graph_exec_graph(const graph_exec *e) { return e->g; }

static uint64_t tensor_bytes(const graph_tensor *t) { return graph_numel(t) * graph_dtype_size(t->dtype); }

/* Inputs and outputs get buffers of their own (persistent, host-visible
 * where the device allows); everything else binds weights or the arena. */
static bool own_buffer(const graph_tensor *t) { return t->role == GRAPH_INPUT || (t->role == GRAPH_TEMP && t->output); }

static op_ref tensor_ref(const graph_exec *e, const exec_slot *s, int t)
{
    const graph_tensor *gt = &e->g->t[t];
    switch (gt->role) {
    case GRAPH_WEIGHT:
    case GRAPH_STATE: return e->weight_ref[t];
    case GRAPH_VIEW: {
        op_ref r = tensor_ref(e, s, gt->view_of);
        return op_ref_sub(r, gt->view_offset * graph_dtype_size(gt->dtype), tensor_bytes(gt));
    }
    default:
        if (own_buffer(gt)) return op_ref_of(&s->own[t]);
        return op_ref_sub(op_ref_of(&s->arena), e->plan.offset[t], tensor_bytes(gt));
    }
}

/* Operand i of node n: its tensor's range from the node's element offset on. */
static op_ref operand_ref(const graph_exec *e, const exec_slot *s, const graph_node *n, uint32_t i)
{
    if (n->in[i] < 0) return (op_ref){0};
    op_ref r = tensor_ref(e, s, n->in[i]);
    uint64_t off = n->in_off[i] * graph_dtype_size(e->g->t[n->in[i]].dtype);
    return op_ref_sub(r, off, r.size - off);
}

static vkf_status node_ops(graph_exec *e, exec_slot *s, const graph_node *n, op_list *l)
{
    vk_device *dev = e->dev;
    op_ref in[GRAPH_MAX_IN];
    for (uint32_t i = 0; i < GRAPH_MAX_IN; i++) in[i] = operand_ref(e, s, n, i);
    op_ref out = tensor_ref(e, s, n->out[0]);
    op_ref meta = n->uses_meta ? op_ref_of(&s->meta) : (op_ref){0};
    switch (n->op) {
    case GRAPH_OP_MATMUL: return op_matmul(dev, &n->p.mm, in[0], in[1], in[2], in[3], out, l);
    case GRAPH_OP_LAYERNORM: {
        op_ref sum = n->out[1] >= 0 ? tensor_ref(e, s, n->out[1]) : (op_ref){0};
        return op_layernorm(dev, &n->p.ln, in[0], in[1], in[2], in[3], sum, out, l);
    }
    case GRAPH_OP_SOFTMAX: return op_softmax(dev, &n->p.sm, in[0], meta, out, l);
    case GRAPH_OP_ATTENTION: return op_attention_rel(dev, &n->p.at, in[0], in[1], in[2], meta, in[3], in[6], in[7], out, l);
    case GRAPH_OP_ELTWISE: return op_eltwise(dev, &n->p.el, in[0], in[1], out, l);
    case GRAPH_OP_EMBED: return op_embed(dev, &n->p.em, in[0], in[1], in[2], in[3], in[4], meta, out, l);
    case GRAPH_OP_PATCHIFY: return op_patchify(dev, &n->p.pf, in[0], out, l);
    case GRAPH_OP_UNFOLD: return op_unfold(dev, &n->p.uf, in[0], n->p.uf.segments ? meta : in[1], out, l);
    case GRAPH_OP_GROUPNORM: return op_groupnorm(dev, &n->p.gn, in[0], in[1], in[2], out, l);
    case GRAPH_OP_CONV1D: return op_conv1d(dev, &n->p.cv, in[0], in[1], in[2], out, l);
    case GRAPH_OP_ROWS: return op_rows(dev, &n->p.rw, in[0], in[1], in[2], meta, out, l);
    case GRAPH_OP_STORE: return op_rows(dev, &n->p.rw, in[0], (op_ref){0}, (op_ref){0}, meta, out, l);
    case GRAPH_OP_ATTENTION_SPLIT:
        return op_attention_split_rel(dev, &n->p.at, in[0], in[1], in[2], meta, in[6], in[7], tensor_ref(e, s, n->out[1]), out, l);
    case GRAPH_OP_TOPK: return op_topk(dev, &n->p.tk, in[0], tensor_ref(e, s, n->out[1]), out, l);
    default: return base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "node %s: unknown op", n->name);
    }
}

/* Nodes are kept in insertion order, which the builder makes topological
 * (a node can only name tensors that exist); this proves it for the plan. */
static vkf_status check_order(const graph *g)
{
    int *producer = malloc((g->n_t ? g->n_t : 1) * sizeof(int));
    if (!producer) return base_fail(g->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; i < g->n_t; i++) producer[i] = -1;
    vkf_status s = VKF_OK;
    for (size_t i = 0; i < g->n_nodes && s == VKF_OK; i++) {
        const graph_node *n = &g->nodes[i];
        for (uint32_t j = 0; j < n->n_in && s == VKF_OK; j++) {
            int t = n->in[j];
            if (t < 0) continue;
            int r = g->t[t].role == GRAPH_VIEW ? g->t[t].view_of : t;
            if (g->t[r].role == GRAPH_TEMP && producer[r] < 0)
                s = base_fail(g->diag, VKF_ERROR_INVALID_ARGUMENT, "node %s reads %s before any node writes it", n->name,
                              g->t[t].name);
        }
        for (uint32_t j = 0; j < n->n_out; j++)
            if (producer[n->out[j]] < 0) producer[n->out[j]] = (int)i;
    }
    free(producer);
    return s;
}

static vkf_status bind_weights(graph_exec *e)
{
    const graph *g = e->g;
    for (size_t i = 0; i < g->n_t; i++) {
        const graph_tensor *t = &g->t[i];
        if (t->role != GRAPH_WEIGHT && t->role != GRAPH_STATE) continue;
        const graph_weights *set = t->role == GRAPH_WEIGHT ? e->w : e->state;
        const graph_weight_entry *w = set ? graph_weights_find(set, t->name) : NULL;
        if (!w)
            return base_fail(g->diag, VKF_ERROR_NOT_FOUND, "%s %s: not in the %s set", t->role == GRAPH_WEIGHT ? "weight" : "state",
                             t->name, t->role == GRAPH_WEIGHT ? "weight" : "state");
        bool same = w->dtype == t->dtype && w->rank == t->rank && !memcmp(w->shape, t->shape, t->rank * sizeof(uint32_t));
        if (!same) {
            char a[96] = "", b[96] = "";
            for (uint32_t k = 0; k < t->rank; k++) snprintf(a + strlen(a), sizeof a - strlen(a), "%s%u", k ? "x" : "", t->shape[k]);
            for (uint32_t k = 0; k < w->rank; k++) snprintf(b + strlen(b), sizeof b - strlen(b), "%s%u", k ? "x" : "", w->shape[k]);
            const char *kind = t->role == GRAPH_WEIGHT ? "weight" : "state";
            return base_fail(g->diag, VKF_ERROR_SHAPE, "%s %s: the graph wants %s %s, the %s set has %s %s", kind, t->name,
                             a, graph_dtype_name(t->dtype), kind, b, graph_dtype_name(w->dtype));
        }
        e->weight_ref[i] = op_ref_sub(op_ref_of(&set->bufs[w->buf]), w->offset, tensor_bytes(t));
    }
    return VKF_OK;
}

vkf_status graph_arenas_create(vk_device *dev, uint32_t slots, uint64_t bytes, graph_arenas **out)
{
    *out = NULL;
    graph_arenas *a = calloc(1, sizeof *a);
    if (!a) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    a->dev = dev;
    a->n = BASE_MIN(BASE_MAX(slots, 1u), (uint32_t)MAX_SLOTS);
    a->bytes = BASE_MAX(bytes, 4u);
    a->refs = 1;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    vkf_status st = VKF_OK;
    for (uint32_t i = 0; i < a->n && st == VKF_OK; i++) st = vk_buf_alloc(dev, a->bytes, VK_MEM_DEVICE, "activations", &a->arena[i]);
    if (st != VKF_OK) {
        graph_arenas_unref(a);
        return st;
    }
    *out = a;
    return VKF_OK;
}

graph_arenas *graph_arenas_ref(graph_arenas *a)
{
    pthread_mutex_lock(&a->lock);
    a->refs++;
    pthread_mutex_unlock(&a->lock);
    return a;
}

void graph_arenas_unref(graph_arenas *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    int left = --a->refs;
    pthread_mutex_unlock(&a->lock);
    if (left) return;
    for (uint32_t i = 0; i < a->n; i++) vk_buf_free(a->dev, &a->arena[i]);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

uint64_t graph_arenas_bytes(const graph_arenas *a) { return a->bytes; }
graph_arenas *graph_exec_arenas(const graph_exec *e) { return e->shared; }

vkf_status graph_arena_need(vk_device *dev, const graph *g, uint64_t *bytes)
{
    uint64_t align = BASE_MAX(BASE_MAX(dev->real.min_storage_align, dev->real.min_texel_align), (uint64_t)64);
    graph_plan plan;
    vkf_status st = graph_plan_memory(g, align, &plan);
    *bytes = st == VKF_OK ? plan.arena_bytes : 0;
    if (st == VKF_OK) graph_plan_free(&plan);
    return st;
}

static vkf_status alloc_slot(graph_exec *e, exec_slot *s)
{
    vk_device *dev = e->dev;
    const graph *g = e->g;
    s->own = calloc(g->n_t, sizeof(*s->own));
    s->staging = calloc(g->n_t, sizeof(*s->staging));
    if (!s->own || !s->staging) return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status st = VKF_OK;
    if (e->shared) s->arena = e->shared->arena[s - e->slot]; /* borrowed: the model's reservation */
    else st = vk_buf_alloc(dev, BASE_MAX(e->plan.arena_bytes, 4u), VK_MEM_DEVICE, "activations", &s->arena);
    if (st == VKF_OK) st = vk_buf_alloc(dev, BASE_MAX(g->n_meta, 1u) * 4, VK_MEM_UPLOAD, "run-time values", &s->meta);
    if (st == VKF_OK) memset(s->meta.mapped, 0, s->meta.size);
    for (size_t i = 0; i < g->n_t && st == VKF_OK; i++) {
        const graph_tensor *t = &g->t[i];
        if (!own_buffer(t)) continue;
        st = vk_buf_alloc(dev, tensor_bytes(t), VK_MEM_DEVICE, t->name, &s->own[i]);
        if (st == VKF_OK && !s->own[i].mapped)
            st = vk_buf_alloc(dev, tensor_bytes(t), t->role == GRAPH_INPUT ? VK_MEM_UPLOAD : VK_MEM_READBACK, t->name,
                              &s->staging[i]);
        e->stats.io_bytes += tensor_bytes(t);
    }
    return st;
}

static vkf_status record_slot(graph_exec *e, exec_slot *s)
{
    vk_device *dev = e->dev;
    const graph *g = e->g;
    vkf_status st = vk_stream_begin(dev, &s->stream, VK_STREAM_REUSABLE | (e->profile ? VK_STREAM_PROFILE : 0));
    uint32_t q;
    /* Query 0: the start of the run (per-node profiles and whole-run time). */
    if (st == VKF_OK) st = vk_stream_timestamp(&s->stream, &q);
    for (size_t i = 0; i < g->n_t && st == VKF_OK; i++)
        if (s->staging[i].block && g->t[i].role == GRAPH_INPUT)
            st = vk_stream_copy(&s->stream, &s->staging[i], 0, &s->own[i], 0, tensor_bytes(&g->t[i]));
    if (e->profile) {
        s->query_node = calloc(8192, sizeof(uint32_t));
        if (!s->query_node) st = base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    for (size_t i = 0; i < g->n_nodes && st == VKF_OK; i++) {
        const graph_node *n = &g->nodes[i];
        op_list l = {0};
        st = node_ops(e, s, n, &l);
        for (size_t k = 0; k < l.n; k++) l.d[k].label = n->name;
        uint32_t q0 = s->stream.n_queries;
        if (st == VKF_OK) st = op_list_record(&s->stream, &l);
        if (st != VKF_OK) st = base_fail_prefix(dev->diag, st, "node %s (%s): ", n->name, graph_op_name(n->op));
        for (uint32_t k = q0; s->query_node && k < s->stream.n_queries && k < 8192; k++) s->query_node[k] = (uint32_t)i;
        op_list_free(&l);
    }
    for (size_t i = 0; i < g->n_t && st == VKF_OK; i++)
        if (s->staging[i].block && g->t[i].output)
            st = vk_stream_copy(&s->stream, &s->own[i], 0, &s->staging[i], 0, tensor_bytes(&g->t[i]));
    if (st == VKF_OK && !e->profile) st = vk_stream_timestamp(&s->stream, &q); /* the end */
    if (st == VKF_OK) st = vk_stream_end(&s->stream);
    return st;
}

vkf_status graph_compile(vk_device *dev, graph *g, const graph_weights *w, const graph_compile_opts *opts,
                         graph_exec **out)
{
    *out = NULL;
    if (g->error) {
        vkf_status s = g->error;
        graph_destroy(g);
        return s;
    }
    graph_exec *e = calloc(1, sizeof(*e));
    if (!e) {
        graph_destroy(g);
        return base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    e->dev = dev;
    e->g = g;
    e->w = w;
    e->state = opts ? opts->state : NULL;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    e->n_slots = opts && opts->slots ? BASE_MIN(opts->slots, (uint32_t)MAX_SLOTS) : 2;
    if (opts && opts->shared) {
        e->shared = opts->shared;
        graph_arenas_ref(e->shared);
        e->n_slots = e->shared->n;
    }
    e->profile = (opts && opts->profile) || base_parse_bool(base_getenv("VKF_PROFILE"), 0) == 1;
    if (e->profile && !dev->caps.timestamps) {
        base_log(dev->diag, VKF_LOG_WARN, "profiling requested but the device has no timestamps");
        e->profile = false;
    }
    uint32_t pipes_before = dev->pipes.created;
    vkf_status st = check_order(g);
    uint64_t align = BASE_MAX(BASE_MAX(dev->real.min_storage_align, dev->real.min_texel_align), (uint64_t)64);
    if (st == VKF_OK) st = graph_plan_memory(g, align, &e->plan);
    if (st == VKF_OK && e->shared && e->plan.arena_bytes > e->shared->bytes)
        st = base_fail(dev->diag, VKF_ERROR_INVALID_ARGUMENT, "graph needs %llu arena bytes, the shared reservation has %llu",
                       (unsigned long long)e->plan.arena_bytes, (unsigned long long)e->shared->bytes);
    e->weight_ref = calloc(g->n_t ? g->n_t : 1, sizeof(*e->weight_ref));
    e->node_us = calloc(g->n_nodes ? g->n_nodes : 1, sizeof(double));
    if (st == VKF_OK && (!e->weight_ref || !e->node_us)) st = base_fail(dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (st == VKF_OK) st = bind_weights(e);
    for (uint32_t i = 0; i < e->n_slots && st == VKF_OK; i++) {
        st = alloc_slot(e, &e->slot[i]);
        if (st == VKF_OK) st = record_slot(e, &e->slot[i]);
    }
    if (st != VKF_OK) {
        graph_exec_destroy(e);
        return st;
    }
    e->stats.arena_bytes = e->plan.arena_bytes;
    e->stats.naive_bytes = e->plan.naive_bytes;
    e->stats.io_bytes /= e->n_slots;
    e->stats.dispatches = e->slot[0].stream.n_dispatches;
    e->stats.barriers = e->slot[0].stream.n_barriers;
    e->stats.pipelines = dev->pipes.created - pipes_before;
    e->stats.nodes = (uint32_t)g->n_nodes;
    e->stats.slots = e->n_slots;
    char b1[32], b2[32];
    base_log(dev->diag, VKF_LOG_INFO,
             "graph compiled: %u nodes, %u dispatches, %u barriers, %u new pipelines, arena %s (naive %s), %u slot(s)%s",
             e->stats.nodes, e->stats.dispatches, e->stats.barriers, e->stats.pipelines,
             base_fmt_bytes(e->stats.arena_bytes, b1), base_fmt_bytes(e->stats.naive_bytes, b2), e->n_slots,
             e->profile ? ", profiling" : "");
    *out = e;
    return VKF_OK;
}

void graph_exec_destroy(graph_exec *e)
{
    if (!e) return;
    for (uint32_t i = 0; i < MAX_SLOTS; i++) {
        exec_slot *s = &e->slot[i];
        vk_stream_destroy(&s->stream);
        if (s->own)
            for (size_t t = 0; t < e->g->n_t; t++) {
                vk_buf_free(e->dev, &s->own[t]);
                vk_buf_free(e->dev, &s->staging[t]);
            }
        if (!e->shared) vk_buf_free(e->dev, &s->arena);
        vk_buf_free(e->dev, &s->meta);
        free(s->own);
        free(s->staging);
        free(s->query_node);
    }
    graph_arenas_unref(e->shared);
    graph_plan_free(&e->plan);
    free(e->weight_ref);
    free(e->node_us);
    graph_destroy(e->g);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
    free(e);
}

void graph_exec_get_stats(const graph_exec *e, graph_exec_stats *s) { *s = e->stats; }

vkf_status graph_exec_acquire(graph_exec *e, uint32_t *slot)
{
    if (e->shared) {
        /* model-wide: arena i is slot i of every variant */
        graph_arenas *a = e->shared;
        pthread_mutex_lock(&a->lock);
        for (;;) {
            for (uint32_t i = 0; i < a->n; i++)
                if (!a->busy[i]) {
                    a->busy[i] = true;
                    e->slot[i].busy = true;
                    *slot = i;
                    pthread_mutex_unlock(&a->lock);
                    return VKF_OK;
                }
            pthread_cond_wait(&a->cond, &a->lock);
        }
    }
    pthread_mutex_lock(&e->lock);
    for (;;) {
        for (uint32_t i = 0; i < e->n_slots; i++)
            if (!e->slot[i].busy) {
                e->slot[i].busy = true;
                *slot = i;
                pthread_mutex_unlock(&e->lock);
                return VKF_OK;
            }
        pthread_cond_wait(&e->cond, &e->lock);
    }
}

void graph_exec_release(graph_exec *e, uint32_t slot)
{
    if (e->shared) {
        graph_arenas *a = e->shared;
        pthread_mutex_lock(&a->lock);
        a->busy[slot] = false;
        e->slot[slot].busy = false;
        pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->lock);
        return;
    }
    pthread_mutex_lock(&e->lock);
    e->slot[slot].busy = false;
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

static vkf_status io_check(graph_exec *e, uint32_t slot, int tensor, size_t bytes, bool input, void **host)
{
    const graph *g = e->g;
    if (slot >= e->n_slots || tensor < 0 || (size_t)tensor >= g->n_t)
        return base_fail(e->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "graph I/O: bad slot or tensor");
    const graph_tensor *t = &g->t[tensor];
    if (input ? t->role != GRAPH_INPUT : !t->output)
        return base_fail(e->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "tensor %s is not a graph %s", t->name,
                         input ? "input" : "output");
    size_t want = graph_numel(t) * 4; /* the host side is always f32 or i32 */
    if (bytes != want)
        return base_fail(e->dev->diag, VKF_ERROR_SHAPE, "tensor %s: %zu bytes given, %zu expected", t->name, bytes, want);
    exec_slot *s = &e->slot[slot];
    *host = s->staging[tensor].block ? s->staging[tensor].mapped : s->own[tensor].mapped;
    return VKF_OK;
}

vkf_status graph_exec_write(graph_exec *e, uint32_t slot, int tensor, const void *data, size_t bytes)
{
    void *dst = NULL;
    vkf_status s = io_check(e, slot, tensor, bytes, true, &dst);
    if (s != VKF_OK) return s;
    const graph_tensor *t = &e->g->t[tensor];
    if (t->dtype == GRAPH_F16) {
        const float *f = data;
        uint16_t *h = dst;
        for (uint64_t i = 0, n = graph_numel(t); i < n; i++) h[i] = base_f32_to_f16(f[i]);
    } else {
        memcpy(dst, data, bytes);
    }
    return VKF_OK;
}

vkf_status graph_exec_read(graph_exec *e, uint32_t slot, int tensor, void *data, size_t bytes)
{
    void *src = NULL;
    vkf_status s = io_check(e, slot, tensor, bytes, false, &src);
    if (s != VKF_OK) return s;
    const graph_tensor *t = &e->g->t[tensor];
    if (t->dtype == GRAPH_F16) {
        const uint16_t *h = src;
        float *f = data;
        for (uint64_t i = 0, n = graph_numel(t); i < n; i++) f[i] = base_f16_to_f32(h[i]);
    } else {
        memcpy(data, src, bytes);
    }
    return VKF_OK;
}

vkf_status graph_exec_set_meta(graph_exec *e, uint32_t slot, uint32_t index, int32_t value)
{
    if (slot >= e->n_slots || index >= e->g->n_meta)
        return base_fail(e->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "run-time value %u out of range (%u)", index, e->g->n_meta);
    ((int32_t *)e->slot[slot].meta.mapped)[index] = value;
    return VKF_OK;
}

vkf_status graph_exec_submit(graph_exec *e, uint32_t slot)
{
    vkf_status s = vk_stream_submit(&e->slot[slot].stream);
    e->slot[slot].submitted = s == VKF_OK;
    return s;
}

vkf_status graph_exec_wait(graph_exec *e, uint32_t slot)
{
    exec_slot *s = &e->slot[slot];
    if (!s->submitted) return VKF_OK;
    s->submitted = false;
    vkf_status st = vk_stream_wait(&s->stream);
    if (st != VKF_OK || !e->profile || !s->query_node) return st;
    uint32_t nq = BASE_MIN(s->stream.n_queries, 8192u);
    double *ns = malloc(nq * sizeof(double));
    if (!ns) return base_fail(e->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    st = vk_stream_read_timestamps(&s->stream, ns, nq);
    if (st == VKF_OK) {
        pthread_mutex_lock(&e->lock);
        /* Query 0 is the start; each later one ends a dispatch of its node. */
        for (uint32_t q = 1; q < nq; q++) e->node_us[s->query_node[q]] += (ns[q] - ns[q - 1]) * 1e-3;
        e->profiled_runs++;
        pthread_mutex_unlock(&e->lock);
    }
    free(ns);
    return st;
}

vkf_status graph_exec_gpu_time(graph_exec *e, uint32_t slot, double *us)
{
    exec_slot *s = &e->slot[slot];
    uint32_t n = s->stream.n_queries;
    if (slot >= e->n_slots || n < 2) return base_fail(e->dev->diag, VKF_ERROR_UNSUPPORTED, "no timestamps on this device");
    double *ns = malloc(n * sizeof(double));
    if (!ns) return base_fail(e->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status st = vk_stream_read_timestamps(&s->stream, ns, n);
    if (st == VKF_OK) *us = ns[n - 1] * 1e-3;
    free(ns);
    return st;
}

vkf_status graph_exec_profile_table(graph_exec *e, char **text)
{
    *text = NULL;
    if (!e->profile || !e->profiled_runs)
        return base_fail(e->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "no profile: compile with profiling (VKF_PROFILE=1) and run first");
    const graph *g = e->g;
    double total = 0;
    for (size_t i = 0; i < g->n_nodes; i++) total += e->node_us[i];
    size_t cap = 256 + g->n_nodes * 160, len = 0;
    char *buf = malloc(cap);
    if (!buf) return base_fail(e->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    len += (size_t)snprintf(buf + len, cap - len, "%-40s %-10s %-22s %10s %7s\n", "node", "op", "output shape", "us",
                            "share");
    for (size_t i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        const graph_tensor *t = &g->t[n->out[0]];
        char shape[64] = "";
        for (uint32_t k = 0; k < t->rank; k++) snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%u", k ? "x" : "", t->shape[k]);
        double us = e->node_us[i] / e->profiled_runs;
        len += (size_t)snprintf(buf + len, cap - len, "%-40.40s %-10s %-22s %10.1f %6.1f%%\n", n->name,
                                graph_op_name(n->op), shape, us, total > 0 ? 100.0 * e->node_us[i] / total : 0.0);
    }
    snprintf(buf + len, cap - len, "%-40s %-10s %-22s %10.1f   (mean of %u runs; dispatches serialised while profiling)\n",
             "total", "", "", total / e->profiled_runs, e->profiled_runs);
    *text = buf;
    return VKF_OK;
}
