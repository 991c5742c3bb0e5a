/* Graph IR and builder: tensors, nodes, and the shape/dtype checks that name
 * the node and the mismatch. */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t graph_dtype_size(graph_dtype t) { return t == GRAPH_F16 ? 2 : 4; }

const char *graph_dtype_name(graph_dtype t)
{
    switch (t) {
    case GRAPH_F16: return "f16";
    case GRAPH_I32: return "i32";
    default: return "f32";
    }
}

const char *graph_op_name(graph_op op)
{
    static const char *const names[] = {"matmul", "layernorm", "softmax", "attention",
                                        "eltwise", "embed", "patchify", "rows", "store", "attention_split", "topk", "unfold",
                                        "groupnorm", "conv1d"};
    return op < GRAPH_OP_COUNT ? names[op] : "?";
}

graph *graph_create(base_diag *d, graph_dtype float_dtype)
{
    graph *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->diag = d;
    g->dtype = float_dtype;
    return g;
}

void graph_destroy(graph *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_t; i++) free(g->t[i].name);
    for (size_t i = 0; i < g->n_nodes; i++) free(g->nodes[i].name);
    free(g->t);
    free(g->nodes);
    free(g);
}

int graph_find(const graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_t; i++)
        if (strcmp(g->t[i].name, name) == 0) return (int)i;
    return -1;
}

uint64_t graph_numel(const graph_tensor *t)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

static void shape_str(const graph_tensor *t, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "[");
    for (uint32_t i = 0; i < t->rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%u", i ? ", " : "", t->shape[i]);
    if (len < size) snprintf(buf + len, size - len, "] %s", graph_dtype_name(t->dtype));
}

/* Records the first error; later builder calls become no-ops returning -1. */
static int fail(graph *g, vkf_status s, const char *fmt, ...) BASE_PRINTF(3, 4);
static int fail(graph *g, vkf_status s, const char *fmt, ...)
{
    if (g->error == VKF_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(base_diag_error(g->diag), BASE_ERROR_BYTES, fmt, ap);
        va_end(ap);
        g->error = s;
    }
    return -1;
}

static int add_tensor(graph *g, const char *name, graph_role role, graph_dtype dtype, uint32_t rank, const uint32_t *shape)
{
    if (g->error) return -1;
    if (rank == 0 || rank > GRAPH_MAX_RANK) return fail(g, VKF_ERROR_SHAPE, "tensor %s: rank %u (1..4)", name, rank);
    for (uint32_t i = 0; i < rank; i++)
        if (shape[i] == 0) return fail(g, VKF_ERROR_SHAPE, "tensor %s: dimension %u is 0", name, i);
    if (graph_find(g, name) >= 0) return fail(g, VKF_ERROR_INVALID_ARGUMENT, "tensor %s defined twice", name);
    uint32_t dims[GRAPH_MAX_RANK]; /* shape may point into g->t, which growing moves (found by fuzz_config) */
    memcpy(dims, shape, rank * sizeof(uint32_t));
    shape = dims;
    if (!base_grow((void **)&g->t, &g->cap_t, g->n_t + 1, sizeof(*g->t)))
        return fail(g, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    graph_tensor *t = &g->t[g->n_t];
    memset(t, 0, sizeof(*t));
    t->name = base_strdup(name);
    if (!t->name) return fail(g, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    t->role = role;
    t->dtype = dtype;
    t->rank = rank;
    memcpy(t->shape, shape, rank * sizeof(uint32_t));
    t->view_of = -1;
    return (int)g->n_t++;
}

int graph_input(graph *g, const char *name, graph_dtype dtype, uint32_t rank, const uint32_t *shape)
{
    return add_tensor(g, name, GRAPH_INPUT, dtype, rank, shape);
}

int graph_weight(graph *g, const char *name, uint32_t rank, const uint32_t *shape)
{
    return add_tensor(g, name, GRAPH_WEIGHT, g->dtype, rank, shape);
}

int graph_state(graph *g, const char *name, uint32_t rank, const uint32_t *shape)
{
    return add_tensor(g, name, GRAPH_STATE, g->dtype, rank, shape);
}

static bool valid(const graph *g, int t) { return t >= 0 && (size_t)t < g->n_t; }

int graph_view(graph *g, const char *name, int parent, uint64_t offset, uint32_t rank, const uint32_t *shape)
{
    if (g->error) return -1;
    if (!valid(g, parent)) return fail(g, VKF_ERROR_INVALID_ARGUMENT, "view %s: no parent tensor", name);
    const graph_tensor *pt = &g->t[parent];
    int id = add_tensor(g, name, GRAPH_VIEW, pt->dtype, rank, shape);
    if (id < 0) return -1;
    graph_tensor *t = &g->t[id];
    if (offset + graph_numel(t) > graph_numel(&g->t[parent]))
        return fail(g, VKF_ERROR_SHAPE, "view %s: elements %llu..%llu outside %s (%llu elements)", name,
                    (unsigned long long)offset, (unsigned long long)(offset + graph_numel(t)), g->t[parent].name,
                    (unsigned long long)graph_numel(&g->t[parent]));
    /* Views of views resolve to the root, so the planner sees one owner. */
    while (g->t[parent].role == GRAPH_VIEW) {
        offset += g->t[parent].view_offset;
        parent = g->t[parent].view_of;
    }
    t->view_of = parent;
    t->view_offset = offset;
    return id;
}

void graph_output(graph *g, int t)
{
    if (g->error) return;
    if (!valid(g, t)) {
        fail(g, VKF_ERROR_INVALID_ARGUMENT, "graph_output: no such tensor");
        return;
    }
    if (g->t[t].role == GRAPH_WEIGHT || g->t[t].role == GRAPH_VIEW || g->t[t].role == GRAPH_STATE) {
        fail(g, VKF_ERROR_INVALID_ARGUMENT, "tensor %s: only inputs and node results can be outputs", g->t[t].name);
        return;
    }
    g->t[t].output = true;
}

void graph_output_target(graph *g, int t)
{
    graph_output(g, t);
    if (!g->error) g->t[t].target_tokens = true;
}

uint32_t graph_meta(graph *g, uint32_t count)
{
    uint32_t first = g->n_meta;
    g->n_meta += count;
    return first;
}

uint32_t graph_meta_named(graph *g, const char *name, uint32_t count)
{
    uint32_t first = graph_meta(g, count);
    if (g->error) return first;
    if (g->n_meta_slots == GRAPH_MAX_META_SLOTS || strlen(name) >= sizeof g->meta_slot[0].name || graph_find_meta(g, name, NULL) >= 0)
        fail(g, VKF_ERROR_INVALID_ARGUMENT, "graph_meta_named: \"%s\" is a duplicate, too long or one too many", name);
    else {
        struct graph_meta_slot *m = &g->meta_slot[g->n_meta_slots++];
        snprintf(m->name, sizeof m->name, "%s", name);
        m->first = first, m->count = count;
    }
    return first;
}

int graph_find_meta(const graph *g, const char *name, uint32_t *count)
{
    for (uint32_t i = 0; i < g->n_meta_slots; i++)
        if (!strcmp(g->meta_slot[i].name, name)) {
            if (count) *count = g->meta_slot[i].count;
            return (int)g->meta_slot[i].first;
        }
    return -1;
}

static graph_node *add_node(graph *g, const char *name, graph_op op)
{
    if (g->error) return NULL;
    if (!base_grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(*g->nodes))) {
        fail(g, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        return NULL;
    }
    graph_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof(*n));
    n->name = base_strdup(name);
    if (!n->name) {
        fail(g, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        return NULL;
    }
    n->op = op;
    for (int i = 0; i < GRAPH_MAX_IN; i++) n->in[i] = -1;
    n->out[0] = n->out[1] = -1;
    g->n_nodes++;
    return n;
}

/* Checks an operand: present when required, of the expected dtype. */
static bool operand(graph *g, const char *node, const char *what, int t, bool required, graph_dtype dtype)
{
    if (t < 0 && !required) return true;
    if (!valid(g, t)) {
        fail(g, VKF_ERROR_INVALID_ARGUMENT, "node %s: %s is missing", node, what);
        return false;
    }
    if (g->t[t].dtype != dtype) {
        fail(g, VKF_ERROR_SHAPE, "node %s: %s %s is %s, expected %s", node, what, g->t[t].name,
             graph_dtype_name(g->t[t].dtype), graph_dtype_name(dtype));
        return false;
    }
    return true;
}

static uint32_t last_dim(const graph *g, int t) { return g->t[t].shape[g->t[t].rank - 1]; }

/* A "[a, b] f32" description of tensor t for messages. */
static const char *desc(const graph *g, int t, char *buf)
{
    shape_str(&g->t[t], buf, 96);
    return buf;
}

/* The node's result: a new intermediate named after the node. */
static int result(graph *g, graph_node *n, uint32_t slot, graph_dtype dtype, uint32_t rank, const uint32_t *shape)
{
    int id = add_tensor(g, n->name, GRAPH_TEMP, dtype, rank, shape);
    if (id < 0) return -1;
    n = &g->nodes[g->n_nodes - 1]; /* add_tensor may not move nodes, but stay safe */
    n->out[slot] = id;
    if (slot + 1 > n->n_out) n->n_out = slot + 1;
    return id;
}

int graph_matmul(graph *g, const char *name, int x, int w, int bias, int res, const graph_matmul_desc *d)
{
    graph_node *n = add_node(g, name, GRAPH_OP_MATMUL);
    if (!n) return -1;
    graph_dtype ft = g->dtype;
    if (!operand(g, name, "x", x, true, ft) || !operand(g, name, "w", w, true, ft) ||
        !operand(g, name, "bias", bias, false, ft) || !operand(g, name, "residual", res, false, ft))
        return -1;
    char b1[96], b2[96];
    const graph_tensor *tx = &g->t[x], *tw = &g->t[w];
    uint32_t batch = d->batch ? d->batch : 1;
    uint32_t wr = tw->rank;
    if (wr < 2 || (d->w_batched && wr != 3) || (!d->w_batched && wr != 2))
        return fail(g, VKF_ERROR_SHAPE, "node %s: weight %s is %s, expected %s", name, tw->name, desc(g, w, b1),
                    d->w_batched ? "[batch, rows, cols]" : "[rows, cols]");
    uint32_t K = last_dim(g, x);
    uint32_t wk = d->layout == OP_W_NT ? tw->shape[wr - 1] : tw->shape[wr - 2];
    uint32_t N = d->layout == OP_W_NT ? tw->shape[wr - 2] : tw->shape[wr - 1];
    if (wk != K)
        return fail(g, VKF_ERROR_SHAPE, "node %s: x %s has %u features but weight %s %s takes %u", name,
                    desc(g, x, b1), K, tw->name, desc(g, w, b2), wk);
    uint64_t rows = graph_numel(tx) / K;
    if (rows % batch || (d->w_batched && tw->shape[0] != batch))
        return fail(g, VKF_ERROR_SHAPE, "node %s: x %s does not split into %u batches", name, desc(g, x, b1), batch);
    if (bias >= 0 && graph_numel(&g->t[bias]) != N)
        return fail(g, VKF_ERROR_SHAPE, "node %s: bias %s has %llu elements, expected %u", name, desc(g, bias, b1),
                    (unsigned long long)graph_numel(&g->t[bias]), N);
    uint32_t oshape[GRAPH_MAX_RANK];
    memcpy(oshape, tx->shape, sizeof oshape);
    oshape[tx->rank - 1] = N;
    if (res >= 0 && graph_numel(&g->t[res]) != rows * N)
        return fail(g, VKF_ERROR_SHAPE, "node %s: residual %s does not match the output (%llu x %u)", name,
                    desc(g, res, b1), (unsigned long long)rows, N);
    n->p.mm = (op_matmul_params){
        .M = (uint32_t)(rows / batch), .N = N, .K = K, .batch = batch, .layout = d->layout,
        .bias = bias >= 0, .residual = res >= 0, .act = d->act, .dtype = (op_dtype)ft,
        .sw = d->w_batched ? (uint64_t)N * K : 0,
    };
    n->in[0] = x, n->in[1] = w, n->in[2] = bias, n->in[3] = res;
    n->n_in = 4;
    return result(g, n, 0, ft, tx->rank, oshape);
}

static int norm_node(graph *g, const char *name, int x, int res, int w, int b, float eps, int *sum_out, bool rms);

int graph_layernorm(graph *g, const char *name, int x, int res, int w, int b, float eps, int *sum_out)
{
    return norm_node(g, name, x, res, w, b, eps, sum_out, false);
}

int graph_rmsnorm(graph *g, const char *name, int x, int res, int w, float eps, int *sum_out)
{
    return norm_node(g, name, x, res, w, -1, eps, sum_out, true);
}

static int norm_node(graph *g, const char *name, int x, int res, int w, int b, float eps, int *sum_out, bool rms)
{
    graph_node *n = add_node(g, name, GRAPH_OP_LAYERNORM);
    if (!n) return -1;
    graph_dtype ft = g->dtype;
    if (!operand(g, name, "x", x, true, ft) || !operand(g, name, "residual", res, false, ft) ||
        !operand(g, name, "weight", w, true, ft) || !operand(g, name, "bias", b, !rms, ft))
        return -1;
    char b1[96], b2[96];
    uint32_t C = last_dim(g, x);
    if (graph_numel(&g->t[w]) != C || (!rms && graph_numel(&g->t[b]) != C))
        return fail(g, VKF_ERROR_SHAPE, "node %s: weight %s / bias %s do not match %u features", name,
                    desc(g, w, b1), rms ? "(none)" : desc(g, b, b2), C);
    if (res >= 0 && graph_numel(&g->t[res]) != graph_numel(&g->t[x]))
        return fail(g, VKF_ERROR_SHAPE, "node %s: residual %s does not match x %s", name, desc(g, res, b1),
                    desc(g, x, b2));
    n->p.ln = (op_layernorm_params){
        .rows = (uint32_t)(graph_numel(&g->t[x]) / C), .cols = C, .eps = eps, .residual = res >= 0,
        .write_sum = sum_out != NULL, .rms = rms, .dtype = (op_dtype)ft,
    };
    n->in[0] = x, n->in[1] = res, n->in[2] = w, n->in[3] = b;
    n->n_in = 4;
    uint32_t rank = g->t[x].rank, shape[GRAPH_MAX_RANK];
    memcpy(shape, g->t[x].shape, sizeof shape);
    int y = result(g, n, 0, ft, rank, shape);
    if (y >= 0 && sum_out) {
        char sname[256];
        snprintf(sname, sizeof sname, "%s.sum", name);
        int s = add_tensor(g, sname, GRAPH_TEMP, ft, rank, shape);
        if (s < 0) return -1;
        g->nodes[g->n_nodes - 1].out[1] = s;
        g->nodes[g->n_nodes - 1].n_out = 2;
        *sum_out = s;
    }
    return y;
}

int graph_softmax(graph *g, const char *name, int x, const op_softmax_params *p)
{
    graph_node *n = add_node(g, name, GRAPH_OP_SOFTMAX);
    if (!n) return -1;
    if (!operand(g, name, "x", x, true, g->dtype)) return -1;
    n->p.sm = *p;
    n->p.sm.cols = last_dim(g, x);
    n->p.sm.rows = (uint32_t)(graph_numel(&g->t[x]) / n->p.sm.cols);
    n->p.sm.dtype = (op_dtype)g->dtype;
    n->uses_meta = p->key_lengths;
    n->in[0] = x;
    n->n_in = 1;
    return result(g, n, 0, g->dtype, g->t[x].rank, g->t[x].shape);
}

int graph_attention(graph *g, const char *name, int q, uint64_t q_off, int k, uint64_t k_off, int v, uint64_t v_off,
                    const op_attention_params *p)
{
    return graph_attention_masked(g, name, q, q_off, k, k_off, v, v_off, -1, p);
}

int graph_attention_masked(graph *g, const char *name, int q, uint64_t q_off, int k, uint64_t k_off, int v, uint64_t v_off,
                           int mask, const op_attention_params *p)
{
    graph_node *n = add_node(g, name, GRAPH_OP_ATTENTION);
    if (!n) return -1;
    graph_dtype ft = g->dtype;
    if (!operand(g, name, "q", q, true, ft) || !operand(g, name, "k", k, true, ft) || !operand(g, name, "v", v, true, ft) ||
        !operand(g, name, "mask", mask, false, GRAPH_I32))
        return -1;
    if (mask >= 0 && graph_numel(&g->t[mask]) != (uint64_t)p->batch * p->kv_len)
        return fail(g, VKF_ERROR_SHAPE, "node %s: the mask %s is not [%u, %u]", name, g->t[mask].name, p->batch, p->kv_len);
    if (!p->batch || !p->q_len || !p->kv_len || !p->heads || !p->head_dim)
        return fail(g, VKF_ERROR_SHAPE, "node %s: empty attention shape", name);
    uint32_t hd = p->heads * p->head_dim;
    struct {
        const char *what;
        int t;
        uint64_t off, len, rs, bs;
    } views[] = {
        {"q", q, q_off, p->q_len, p->q_rs ? p->q_rs : hd, p->q_bs},
        {"k", k, k_off, p->kv_len, p->k_rs ? p->k_rs : hd, p->k_bs},
        {"v", v, v_off, p->kv_len, p->v_rs ? p->v_rs : hd, p->v_bs},
    };
    for (size_t i = 0; i < 3; i++) {
        uint64_t bs = views[i].bs ? views[i].bs : views[i].len * views[i].rs;
        uint64_t end = views[i].off + (p->batch - 1) * bs + (views[i].len - 1) * views[i].rs + hd;
        if (end > graph_numel(&g->t[views[i].t]))
            return fail(g, VKF_ERROR_SHAPE, "node %s: the %s view (%u x %u x %u heads x %u) runs past %s", name,
                        views[i].what, p->batch, (uint32_t)views[i].len, p->heads, p->head_dim, g->t[views[i].t].name);
    }
    n->p.at = *p;
    n->p.at.dtype = (op_dtype)ft;
    n->in[0] = q, n->in[1] = k, n->in[2] = v, n->in[3] = mask;
    n->in_off[0] = q_off, n->in_off[1] = k_off, n->in_off[2] = v_off;
    n->n_in = 4;
    n->uses_meta = p->dyn_pos || p->key_lengths || p->segments;
    uint32_t shape[3] = {p->batch, p->q_len, hd};
    return result(g, n, 0, ft, 3, shape);
}

void graph_attention_rel(graph *g, int att, int table, int buckets)
{
    if (g->error) return;
    graph_node *n = NULL;
    for (size_t i = g->n_nodes; i-- > 0 && !n;)
        if (g->nodes[i].out[0] == att && (g->nodes[i].op == GRAPH_OP_ATTENTION || g->nodes[i].op == GRAPH_OP_ATTENTION_SPLIT))
            n = &g->nodes[i];
    if (!n) {
        fail(g, VKF_ERROR_INVALID_ARGUMENT, "graph_attention_rel: no attention node makes that tensor");
        return;
    }
    if (!operand(g, n->name, "relative bias table", table, true, g->dtype) ||
        !operand(g, n->name, "relative bias buckets", buckets, true, g->dtype))
        return;
    const op_attention_params *p = &n->p.at;
    if (p->dis) { /* DeBERTa: pqk [rows, 2, heads, head_dim] */
        if (n->op != GRAPH_OP_ATTENTION || graph_numel(&g->t[buckets]) < 2ull * p->rel_center + 1 ||
            graph_numel(&g->t[table]) != (uint64_t)p->dis_rows * 2 * p->heads * p->head_dim) {
            fail(g, VKF_ERROR_SHAPE, "node %s: disentangled attention needs pqk [%u, 2 x %u x %u] and %u bucket entries", n->name,
                 p->dis_rows, p->heads, p->head_dim, 2 * p->rel_center + 1);
            return;
        }
    } else if (!p->rel_bias || graph_numel(&g->t[buckets]) < 2ull * p->rel_center + 1 || graph_numel(&g->t[table]) % p->heads) {
        fail(g, VKF_ERROR_SHAPE, "node %s: the relative bias needs rel_bias, a [buckets, %u] table and %u bucket entries", n->name,
             p->heads, 2 * p->rel_center + 1);
        return;
    }
    for (uint32_t k = n->n_in; k < GRAPH_MAX_IN; k++) n->in[k] = -1;
    n->in[6] = table, n->in[7] = buckets;
    n->n_in = GRAPH_MAX_IN;
}

int graph_eltwise(graph *g, const char *name, op_eltwise_kind kind, op_act act, int a, int b, float value)
{
    graph_node *n = add_node(g, name, GRAPH_OP_ELTWISE);
    if (!n) return -1;
    bool binary = kind == OP_ADD || kind == OP_MUL;
    if (!operand(g, name, "a", a, true, g->dtype) || !operand(g, name, "b", b, binary, g->dtype)) return -1;
    char b1[96], b2[96];
    if (binary && graph_numel(&g->t[a]) != graph_numel(&g->t[b]))
        return fail(g, VKF_ERROR_SHAPE, "node %s: %s and %s differ in size", name, desc(g, a, b1), desc(g, b, b2));
    if (kind == OP_FILL) return fail(g, VKF_ERROR_INVALID_ARGUMENT, "node %s: fill is not a graph op", name);
    n->p.el = (op_eltwise_params){.kind = kind, .act = act, .value = value, .n = graph_numel(&g->t[a]),
                                  .dtype = (op_dtype)g->dtype};
    n->in[0] = a, n->in[1] = binary ? b : -1;
    n->n_in = 2;
    return result(g, n, 0, g->dtype, g->t[a].rank, g->t[a].shape);
}

int graph_embed(graph *g, const char *name, int ids, int tt_ids, int wte, int wpe, int wtt, const op_embed_params *p)
{
    graph_node *n = add_node(g, name, GRAPH_OP_EMBED);
    if (!n) return -1;
    graph_dtype ft = g->dtype;
    if (!operand(g, name, "ids", ids, true, GRAPH_I32) || !operand(g, name, "token types", tt_ids, p->token_type, GRAPH_I32) ||
        !operand(g, name, "word embeddings", wte, true, ft) || !operand(g, name, "positions", wpe, p->pos, ft) ||
        !operand(g, name, "type embeddings", wtt, p->token_type, ft))
        return -1;
    char b1[96];
    if (g->t[wte].rank != 2) return fail(g, VKF_ERROR_SHAPE, "node %s: word embeddings %s are not 2-D", name, desc(g, wte, b1));
    uint32_t dim = g->t[wte].shape[1];
    n->p.em = *p;
    n->p.em.tokens = (uint32_t)graph_numel(&g->t[ids]);
    n->p.em.seq = g->t[ids].shape[g->t[ids].rank - 1];
    n->p.em.dim = dim;
    n->p.em.vocab = g->t[wte].shape[0];
    n->p.em.max_pos = p->pos ? g->t[wpe].shape[0] : 0;
    n->p.em.type_vocab = p->token_type ? g->t[wtt].shape[0] : 0;
    n->p.em.dtype = (op_dtype)ft;
    if ((p->pos && last_dim(g, wpe) != dim) || (p->token_type && last_dim(g, wtt) != dim))
        return fail(g, VKF_ERROR_SHAPE, "node %s: position/type tables do not have %u features", name, dim);
    n->uses_meta = p->dyn_pos;
    n->in[0] = ids, n->in[1] = tt_ids, n->in[2] = wte, n->in[3] = wpe, n->in[4] = wtt;
    n->n_in = 5;
    uint32_t shape[GRAPH_MAX_RANK] = {0};
    uint32_t rank = g->t[ids].rank + 1;
    if (rank > GRAPH_MAX_RANK) return fail(g, VKF_ERROR_SHAPE, "node %s: ids of rank %u", name, rank - 1);
    memcpy(shape, g->t[ids].shape, g->t[ids].rank * sizeof(uint32_t));
    shape[rank - 1] = dim;
    return result(g, n, 0, ft, rank, shape);
}

int graph_patchify(graph *g, const char *name, int image, uint32_t patch_h, uint32_t patch_w)
{
    graph_node *n = add_node(g, name, GRAPH_OP_PATCHIFY);
    if (!n) return -1;
    if (!operand(g, name, "image", image, true, g->dtype)) return -1;
    const graph_tensor *t = &g->t[image];
    char b1[96];
    if (t->rank != 4) return fail(g, VKF_ERROR_SHAPE, "node %s: image %s is not [B, C, H, W]", name, desc(g, image, b1));
    if (!patch_h || !patch_w || t->shape[2] % patch_h || t->shape[3] % patch_w)
        return fail(g, VKF_ERROR_SHAPE, "node %s: image %s is not a whole number of %ux%u patches", name,
                    desc(g, image, b1), patch_h, patch_w);
    n->p.pf = (op_patchify_params){t->shape[0], t->shape[1], t->shape[2], t->shape[3], patch_h, patch_w,
                                   (op_dtype)g->dtype};
    n->in[0] = image;
    n->n_in = 1;
    uint32_t shape[3] = {t->shape[0], (t->shape[2] / patch_h) * (t->shape[3] / patch_w), t->shape[1] * patch_h * patch_w};
    return result(g, n, 0, g->dtype, 3, shape);
}

/* seg: 0, or 1 + the meta index of packed texts' segments */
static int unfold(graph *g, const char *name, int x, int mask, uint32_t seg, uint32_t kernel, uint32_t stride, uint32_t pad)
{
    graph_node *n = add_node(g, name, GRAPH_OP_UNFOLD);
    if (!n) return -1;
    if (!operand(g, name, "x", x, true, g->dtype) || !operand(g, name, "mask", mask, false, GRAPH_I32)) return -1;
    const graph_tensor *t = &g->t[x];
    char b1[96];
    if (t->rank != 3) return fail(g, VKF_ERROR_SHAPE, "node %s: x %s is not [B, L, C]", name, desc(g, x, b1));
    n->p.uf = (op_unfold_params){t->shape[0], t->shape[1], t->shape[2], kernel, stride, pad, (op_dtype)g->dtype, seg > 0, seg ? seg - 1 : 0};
    uint32_t Lout = op_unfold_len(&n->p.uf);
    if (!Lout) return fail(g, VKF_ERROR_SHAPE, "node %s: a kernel of %u does not fit %s padded by %u", name, kernel, desc(g, x, b1), pad);
    if (seg && (stride != 1 || Lout != t->shape[1]))
        return fail(g, VKF_ERROR_INVALID_ARGUMENT, "node %s: segments need stride 1 and one output per position", name);
    if (seg && seg - 1 + 2ull * t->shape[0] * t->shape[1] > g->n_meta)
        return fail(g, VKF_ERROR_SHAPE, "node %s: the segments reach past the graph's run-time values", name);
    n->uses_meta = seg > 0;
    if (mask >= 0 && graph_numel(&g->t[mask]) != (uint64_t)t->shape[0] * t->shape[1])
        return fail(g, VKF_ERROR_SHAPE, "node %s: the mask is not [%u, %u]", name, t->shape[0], t->shape[1]);
    n->in[0] = x, n->in[1] = mask;
    n->n_in = 2;
    uint32_t shape[3] = {t->shape[0], Lout, t->shape[2] * kernel};
    return result(g, n, 0, g->dtype, 3, shape);
}

int graph_unfold(graph *g, const char *name, int x, int mask, uint32_t kernel, uint32_t stride, uint32_t pad)
{
    return unfold(g, name, x, mask, 0, kernel, stride, pad);
}

int graph_unfold_segments(graph *g, const char *name, int x, uint32_t seg_index, uint32_t kernel)
{
    return unfold(g, name, x, -1, seg_index + 1, kernel, 1, (kernel - 1) / 2);
}

int graph_groupnorm(graph *g, const char *name, int x, int w, int b, uint32_t groups, float eps, op_act act)
{
    graph_node *n = add_node(g, name, GRAPH_OP_GROUPNORM);
    if (!n) return -1;
    graph_dtype ft = g->dtype;
    if (!operand(g, name, "x", x, true, ft) || !operand(g, name, "weight", w, true, ft) || !operand(g, name, "bias", b, true, ft))
        return -1;
    const graph_tensor *t = &g->t[x];
    char b1[96], b2[96];
    if (t->rank != 3) return fail(g, VKF_ERROR_SHAPE, "node %s: x %s is not [B, L, C]", name, desc(g, x, b1));
    uint32_t C = t->shape[2];
    if (!groups || C % groups)
        return fail(g, VKF_ERROR_SHAPE, "node %s: %u groups do not divide the %u channels of %s", name, groups, C, desc(g, x, b1));
    if (graph_numel(&g->t[w]) != C || graph_numel(&g->t[b]) != C)
        return fail(g, VKF_ERROR_SHAPE, "node %s: weight %s / bias %s do not match %u channels", name, desc(g, w, b1),
                    desc(g, b, b2), C);
    n->p.gn = (op_groupnorm_params){t->shape[0], t->shape[1], C, groups, eps, act, (op_dtype)ft};
    n->in[0] = x, n->in[1] = w, n->in[2] = b;
    n->n_in = 3;
    uint32_t shape[3] = {t->shape[0], t->shape[1], C};
    return result(g, n, 0, ft, 3, shape);
}

int graph_conv1d(graph *g, const char *name, int x, int w, int bias, const op_conv1d_params *shape)
{
    graph_node *n = add_node(g, name, GRAPH_OP_CONV1D);
    if (!n) return -1;
    graph_dtype ft = g->dtype;
    if (!operand(g, name, "x", x, true, ft) || !operand(g, name, "weight", w, true, ft) ||
        !operand(g, name, "bias", bias, false, ft))
        return -1;
    const graph_tensor *t = &g->t[x], *tw = &g->t[w];
    char b1[96], b2[96];
    if (t->rank != 3) return fail(g, VKF_ERROR_SHAPE, "node %s: x %s is not [B, L, C]", name, desc(g, x, b1));
    op_conv1d_params p = *shape;
    p.batch = t->shape[0], p.len = t->shape[1], p.in_ch = t->shape[2];
    p.out_ch = tw->shape[0];
    p.dtype = (op_dtype)ft;
    if (!p.groups || p.in_ch % p.groups || tw->rank != 3 || p.out_ch % p.groups || tw->shape[1] != p.in_ch / p.groups ||
        tw->shape[2] != p.kernel)
        return fail(g, VKF_ERROR_SHAPE, "node %s: weight %s is not [Cout, %u / %u groups, kernel %u] for x %s", name,
                    desc(g, w, b1), p.in_ch, p.groups, p.kernel, desc(g, x, b2));
    if (bias >= 0 && graph_numel(&g->t[bias]) != p.out_ch)
        return fail(g, VKF_ERROR_SHAPE, "node %s: bias %s does not match %u channels", name, desc(g, bias, b1), p.out_ch);
    uint32_t Lout = op_conv1d_len(&p);
    if (!Lout)
        return fail(g, VKF_ERROR_SHAPE, "node %s: a kernel of %u does not fit %s padded by %u", name, p.kernel, desc(g, x, b1),
                    p.pad);
    n->p.cv = p;
    n->in[0] = x, n->in[1] = w, n->in[2] = bias;
    n->n_in = 3;
    uint32_t oshape[3] = {p.batch, Lout, p.out_ch};
    return result(g, n, 0, ft, 3, oshape);
}

int graph_rows(graph *g, const char *name, int x, int c, int pos, const op_rows_params *p)
{
    graph_node *n = add_node(g, name, GRAPH_OP_ROWS);
    if (!n) return -1;
    graph_dtype ft = g->dtype;
    if (!operand(g, name, "x", x, p->mode != OP_ROWS_PREPEND || p->seq > 1, ft) ||
        !operand(g, name, "row", c, p->mode == OP_ROWS_PREPEND, ft) || !operand(g, name, "positions", pos, false, ft))
        return -1;
    if (p->mode == OP_ROWS_COPY)
        return fail(g, VKF_ERROR_UNSUPPORTED, "node %s: KV append writes persistent state, not a graph intermediate", name);
    char b1[96];
    n->p.rw = *p;
    n->p.rw.dtype = (op_dtype)ft;
    uint32_t dim = p->dim, rank = 2, shape[3];
    if (p->mode == OP_ROWS_PREPEND) {
        /* x: [batch, seq - 1, dim]; pos: the position table [seq, dim] (optional) */
        if (x >= 0 && graph_numel(&g->t[x]) != (uint64_t)p->batch * (p->seq - 1) * dim)
            return fail(g, VKF_ERROR_SHAPE, "node %s: x %s is not [%u, %u, %u]", name, desc(g, x, b1), p->batch,
                        p->seq - 1, dim);
        if (graph_numel(&g->t[c]) != dim)
            return fail(g, VKF_ERROR_SHAPE, "node %s: the prepended row %s is not %u long", name, desc(g, c, b1), dim);
        if (pos >= 0 && graph_numel(&g->t[pos]) != (uint64_t)p->seq * dim)
            return fail(g, VKF_ERROR_SHAPE, "node %s: position table %s is not [%u, %u]", name, desc(g, pos, b1),
                        p->seq, dim);
        rank = 3, shape[0] = p->batch, shape[1] = p->seq, shape[2] = dim;
    } else {
        uint64_t want = p->mode == OP_ROWS_L2 ? (uint64_t)p->batch * dim
                        : p->x_shared        ? (uint64_t)p->seq * dim
                                             : (uint64_t)p->batch * p->seq * dim;
        if (graph_numel(&g->t[x]) < want)
            return fail(g, VKF_ERROR_SHAPE, "node %s: x %s holds fewer than %llu elements", name, desc(g, x, b1),
                        (unsigned long long)want);
        shape[0] = p->batch, shape[1] = dim;
    }
    n->uses_meta = p->use_meta;
    n->in[0] = x, n->in[1] = c, n->in[2] = pos;
    n->n_in = 3;
    return result(g, n, 0, ft, rank, shape);
}

int graph_store(graph *g, const char *name, int x, uint64_t x_off, int state, const op_rows_params *p)
{
    graph_node *n = add_node(g, name, GRAPH_OP_STORE);
    if (!n) return -1;
    if (!operand(g, name, "x", x, true, g->dtype) || !operand(g, name, "state", state, true, g->dtype)) return -1;
    if (g->t[state].role != GRAPH_STATE)
        return fail(g, VKF_ERROR_INVALID_ARGUMENT, "node %s: %s is not a state tensor", name, g->t[state].name);
    if (p->mode != OP_ROWS_COPY) return fail(g, VKF_ERROR_INVALID_ARGUMENT, "node %s: a store is a row COPY", name);
    uint32_t x_rs = p->x_rs ? p->x_rs : p->dim, y_rs = p->y_rs ? p->y_rs : p->dim;
    uint64_t x_bs = p->x_bs ? p->x_bs : (uint64_t)p->seq * x_rs;
    uint64_t x_end = x_off + (uint64_t)(p->batch - 1) * x_bs + (uint64_t)(p->seq - 1) * x_rs + p->dim;
    uint64_t y_end = (uint64_t)(p->batch - 1) * p->y_bs + (uint64_t)(p->y_len - 1) * y_rs + p->dim;
    if (!p->batch || !p->seq || !p->dim || !p->y_bs || !p->y_len || x_end > graph_numel(&g->t[x]) ||
        y_end > graph_numel(&g->t[state]))
        return fail(g, VKF_ERROR_SHAPE, "node %s: the rows copied from %s or into %s run past them", name, g->t[x].name,
                    g->t[state].name);
    n->p.rw = *p;
    n->p.rw.dtype = (op_dtype)g->dtype;
    n->uses_meta = p->use_meta;
    n->in[0] = x;
    n->in_off[0] = x_off;
    n->n_in = 1;
    n->out[0] = state;
    n->n_out = 1;
    return state;
}

int graph_attention_split(graph *g, const char *name, int q, uint64_t q_off, int k, uint64_t k_off, int v, uint64_t v_off,
                          const op_attention_params *p)
{
    if (g->error) return -1;
    if (p->q_len != 1 || !p->key_lengths)
        return fail(g, VKF_ERROR_INVALID_ARGUMENT, "node %s: split attention takes one query and key counts from meta", name);
    int o = graph_attention(g, name, q, q_off, k, k_off, v, v_off, p);
    if (o < 0) return -1;
    graph_node *n = &g->nodes[g->n_nodes - 1];
    n->op = GRAPH_OP_ATTENTION_SPLIT;
    /* fp32 partials for the merge: [B, H, splits, D + 2] at the most splits
     * any device uses (chunks of 64 keys) */
    char sname[256];
    snprintf(sname, sizeof sname, "%s.partials", name);
    uint32_t splits = (p->kv_len + 63) / 64, shape[4] = {p->batch, p->heads, splits, p->head_dim + 2};
    int s = add_tensor(g, sname, GRAPH_TEMP, GRAPH_F32, 4, shape);
    if (s < 0) return -1;
    n = &g->nodes[g->n_nodes - 1];
    n->out[1] = s;
    n->n_out = 2;
    return o;
}

int graph_topk(graph *g, const char *name, int x, uint32_t k, int *values)
{
    graph_node *n = add_node(g, name, GRAPH_OP_TOPK);
    if (!n) return -1;
    if (!operand(g, name, "x", x, true, g->dtype)) return -1;
    if (!k || k > OP_TOPK_MAX) return fail(g, VKF_ERROR_INVALID_ARGUMENT, "node %s: k %u is not in 1..%u", name, k, OP_TOPK_MAX);
    uint32_t cols = last_dim(g, x), rows = (uint32_t)(graph_numel(&g->t[x]) / cols);
    n->p.tk = (op_topk_params){.rows = rows, .cols = cols, .k = k, .dtype = (op_dtype)g->dtype};
    n->in[0] = x;
    n->n_in = 1;
    uint32_t shape[2] = {rows, k};
    int idx = result(g, n, 0, GRAPH_I32, 2, shape);
    if (idx < 0) return -1;
    char vname[256];
    snprintf(vname, sizeof vname, "%s.values", name);
    int v = add_tensor(g, vname, GRAPH_TEMP, GRAPH_F32, 2, shape);
    if (v < 0) return -1;
    n = &g->nodes[g->n_nodes - 1];
    n->out[1] = v;
    n->n_out = 2;
    if (values) *values = v;
    return idx;
}
