/* The graph: IR and builder (graph.c), memory plan (plan.c), compile and run
 * (exec.c), and the weight set the graph's weight tensors bind to (weights.c).
 *
 * A model builds one graph per shape (batch size, sequence bucket) from tensor
 * ids; nodes are the op families of src/ops. Compiling plans memory (weights in
 * their own buffers, inputs and outputs in persistent host-visible buffers,
 * intermediates in one arena with liveness-based reuse), creates pipelines,
 * writes descriptor sets and records one command buffer per in-flight slot.
 * Running is: write inputs and meta values, submit, wait, read outputs.
 *
 * Threading: a graph is built by one thread. A compiled graph_exec may be run
 * from several threads: each run takes one of its slots (waiting while all are
 * busy), so up to `slots` inferences are in flight at once. */
#ifndef VKF_GRAPH_H
#define VKF_GRAPH_H

#include "../ops/ops.h"

typedef enum graph_dtype { GRAPH_F32 = OP_F32, GRAPH_F16 = OP_F16, GRAPH_I32 = 2 } graph_dtype;

uint32_t graph_dtype_size(graph_dtype t);
const char *graph_dtype_name(graph_dtype t);

typedef enum graph_role {
    GRAPH_TEMP = 0, /* intermediate: lives in the arena */
    GRAPH_INPUT,    /* written by the host before each run */
    GRAPH_WEIGHT,   /* bound to a weight set entry at compile */
    GRAPH_VIEW,     /* an element range of another tensor */
    GRAPH_STATE     /* persistent across runs (a KV cache): bound at compile to a
                     * state set owned by whoever runs the graph (a generation
                     * session); nodes read it and write it in place (graph_store).
                     * Never in the arena: the plan skips it, its contents
                     * outlive every run. */
} graph_role;

#define GRAPH_MAX_RANK 4
#define GRAPH_MAX_META_SLOTS 8
#define GRAPH_MAX_IN 8

typedef struct graph_tensor {
    char *name;
    graph_role role;
    graph_dtype dtype;
    uint32_t rank;
    uint32_t shape[GRAPH_MAX_RANK];
    bool output;          /* read by the host after each run */
    bool target_tokens;   /* an output [B, tgt, X] over the key's second token count (graph_output_target) */
    int view_of;          /* GRAPH_VIEW: the parent tensor */
    uint64_t view_offset; /* GRAPH_VIEW: in elements of the parent */
} graph_tensor;

typedef enum graph_op {
    GRAPH_OP_MATMUL = 0,
    GRAPH_OP_LAYERNORM,
    GRAPH_OP_SOFTMAX,
    GRAPH_OP_ATTENTION,
    GRAPH_OP_ELTWISE,
    GRAPH_OP_EMBED,
    GRAPH_OP_PATCHIFY,
    GRAPH_OP_ROWS,
    GRAPH_OP_STORE,           /* rows COPY into a state tensor */
    GRAPH_OP_ATTENTION_SPLIT, /* one query per sequence over a state cache */
    GRAPH_OP_TOPK,
    GRAPH_OP_UNFOLD,
    GRAPH_OP_GROUPNORM,
    GRAPH_OP_CONV1D,
    GRAPH_OP_COUNT
} graph_op;

const char *graph_op_name(graph_op op);

typedef struct graph_node {
    char *name;
    graph_op op;
    union {
        op_matmul_params mm;
        op_layernorm_params ln;
        op_softmax_params sm;
        op_attention_params at;
        op_eltwise_params el;
        op_embed_params em;
        op_patchify_params pf;
        op_rows_params rw;
        op_topk_params tk;
        op_unfold_params uf;
        op_groupnorm_params gn;
        op_conv1d_params cv;
    } p;
    /* Operand tensor ids in the op's order; -1 where the op takes none. An
     * operand may start in_off elements into its tensor (attention reads Q, K
     * and V from one packed projection). */
    int in[GRAPH_MAX_IN];
    uint64_t in_off[GRAPH_MAX_IN];
    uint32_t n_in;
    int out[2];
    uint32_t n_out;
    bool uses_meta;
} graph_node;

typedef struct graph {
    base_diag *diag;
    graph_dtype dtype;     /* storage type of float activations and weights */
    graph_tensor *t;
    size_t n_t, cap_t;
    graph_node *nodes;
    size_t n_nodes, cap_nodes;
    uint32_t n_meta;       /* int32 values the host sets per run */
    struct graph_meta_slot { char name[24]; uint32_t first, count; } meta_slot[GRAPH_MAX_META_SLOTS];
    uint32_t n_meta_slots; /* named ranges of the meta values (graph_meta_named) */
    vkf_status error;      /* the first builder error (sticky), message in diag */
} graph;

graph *graph_create(base_diag *d, graph_dtype float_dtype);
void graph_destroy(graph *g);
int graph_find(const graph *g, const char *name);
/* Elements of a tensor. */
uint64_t graph_numel(const graph_tensor *t);

/* Tensors. Every builder call returns a tensor id, or -1 after an error (the
 * error is kept in g->error; later calls return -1 too, compile refuses). */
int graph_input(graph *g, const char *name, graph_dtype dtype, uint32_t rank, const uint32_t *shape);
int graph_weight(graph *g, const char *name, uint32_t rank, const uint32_t *shape);
/* A persistent tensor (GRAPH_STATE) of the graph's float type, bound by name
 * to graph_compile_opts.state. */
int graph_state(graph *g, const char *name, uint32_t rank, const uint32_t *shape);
int graph_view(graph *g, const char *name, int parent, uint64_t offset, uint32_t rank, const uint32_t *shape);
void graph_output(graph *g, int t);
/* An output whose second dimension counts the decoder's tokens (the key's
 * tgt), not the encoder's: the runtime crops it by the decoder's length. */
void graph_output_target(graph *g, int t);
/* Reserves `count` int32 meta values; returns the index of the first. */
uint32_t graph_meta(graph *g, uint32_t count);
/* The same under a name the host sets them by ("positions", "counts"), so
 * the builder and the runner agree on a name, not on an index. */
uint32_t graph_meta_named(graph *g, const char *name, uint32_t count);
/* The named range: its first index (and count), or -1 when there is none. */
int graph_find_meta(const graph *g, const char *name, uint32_t *count);

/* Nodes. Float tensors take the graph's dtype; rank >= 2 tensors fold all
 * leading dimensions into rows. The returned tensor is the node's output. */
typedef struct graph_matmul_desc {
    op_w_layout layout;
    op_act act;
    uint32_t batch;        /* > 1: x and y are [batch, M, K] / [batch, M, N] */
    bool w_batched;        /* w is [batch, N, K] (NT) or [batch, K, N] (NN) */
} graph_matmul_desc;

int graph_matmul(graph *g, const char *name, int x, int w, int bias, int res, const graph_matmul_desc *d);
/* y = LN(x (+ res)); with sum_out, also returns the tensor holding x + res. */
int graph_layernorm(graph *g, const char *name, int x, int res, int w, int b, float eps, int *sum_out);
/* The same with T5's RMS norm: y = h / sqrt(mean(h^2) + eps) * w, no bias. */
int graph_rmsnorm(graph *g, const char *name, int x, int res, int w, float eps, int *sum_out);
int graph_softmax(graph *g, const char *name, int x, const op_softmax_params *p);
/* q, k, v are tensors (possibly the same one, e.g. a packed QKV projection)
 * with element offsets where the views start; strides in p. */
int graph_attention(graph *g, const char *name, int q, uint64_t q_off, int k, uint64_t k_off, int v, uint64_t v_off,
                    const op_attention_params *p);
/* The same with a key mask: an int32 [batch, kv_len] tensor (HF's 0/1
 * attention_mask); -1 for none. */
int graph_attention_masked(graph *g, const char *name, int q, uint64_t q_off, int k, uint64_t k_off, int v, uint64_t v_off,
                           int mask, const op_attention_params *p);
int graph_eltwise(graph *g, const char *name, op_eltwise_kind kind, op_act act, int a, int b, float value);
int graph_embed(graph *g, const char *name, int ids, int tt_ids, int wte, int wpe, int wtt, const op_embed_params *p);
int graph_patchify(graph *g, const char *name, int image, uint32_t patch_h, uint32_t patch_w);
/* x [B, L, C] -> [B, Lout, C*kernel] (op_unfold); mask: an int32 [B, L] input or -1. */
int graph_unfold(graph *g, const char *name, int x, int mask, uint32_t kernel, uint32_t stride, uint32_t pad);
/* The same at stride 1 over packed texts (odd kernel, pad (kernel - 1) / 2):
 * each position's taps only within its own text, per the segments (2 per
 * token, as op_attention's) at meta seg_index. */
int graph_unfold_segments(graph *g, const char *name, int x, uint32_t seg_index, uint32_t kernel);
/* GroupNorm (op_groupnorm) of x [B, L, C] with w, b [C]; output the same shape. */
int graph_groupnorm(graph *g, const char *name, int x, int w, int b, uint32_t groups, float eps, op_act act);
/* Conv1d (op_conv1d) of x [B, L, Cin] with w [Cout, Cin/groups, kernel] and
 * bias [Cout] (or -1): shape gives kernel, stride, pad, groups, out_len and
 * act (batch, len, in_ch from x, out_ch from w). Output [B, Lout, Cout]. */
int graph_conv1d(graph *g, const char *name, int x, int w, int bias, const op_conv1d_params *shape);
/* Row ops: PREPEND (c: the row, pos: optional position table [seq, dim]),
 * GATHER, MEAN, L2. COPY writes persistent state and is not a graph op. */
int graph_rows(graph *g, const char *name, int x, int c, int pos, const op_rows_params *p);

/* Writes rows of x into the state tensor `state` in place: p is a COPY
 * (state [batch, rows, dim] with p->y_bs / y_rs / y_len; position static
 * or per sequence from meta). Returns state, so later readers depend on it. */
int graph_store(graph *g, const char *name, int x, uint64_t x_off, int state, const op_rows_params *p);
/* Decode attention over a cache (op_attention_split): q_len 1, key counts
 * from meta (p->key_lengths, len_index). Output [batch, 1, heads * head_dim]. */
int graph_attention_split(graph *g, const char *name, int q, uint64_t q_off, int k, uint64_t k_off, int v, uint64_t v_off,
                          const op_attention_params *p);
/* T5's relative position bias on the attention node that made `att` (either
 * form, p->rel_bias set): table [buckets, heads] and buckets [2 * rel_center + 1]
 * (float bucket ids), both of the graph's float type. */
void graph_attention_rel(graph *g, int att, int table, int buckets);
/* The k largest entries of each row of x [.., cols]: returns the int32
 * indices [rows, k]; *values (optional) gets the fp32 values [rows, k]. */
int graph_topk(graph *g, const char *name, int x, uint32_t k, int *values);

/* ---- weights ----------------------------------------------------------- */

typedef struct graph_weight_entry {
    char *name;
    graph_dtype dtype;
    uint32_t rank, shape[GRAPH_MAX_RANK];
    int buf;               /* index into bufs */
    VkDeviceSize offset;   /* bytes into that buffer: entries may be views */
} graph_weight_entry;

typedef struct graph_weights {
    vk_device *dev;
    graph_weight_entry *e;
    size_t n, cap;
    vk_buf *bufs;
    size_t n_bufs, cap_bufs;
    uint64_t bytes;
} graph_weights;

void graph_weights_init(graph_weights *w, vk_device *dev);
void graph_weights_free(graph_weights *w);
/* A device buffer of `bytes` owned by the set; returns its index. */
vkf_status graph_weights_alloc(graph_weights *w, uint64_t bytes, const char *what, int *buf);
/* Names a typed range of one of the set's buffers. */
vkf_status graph_weights_add(graph_weights *w, const char *name, graph_dtype dtype, uint32_t rank,
                             const uint32_t *shape, int buf, VkDeviceSize offset);
/* Writes bytes into one of the set's buffers (weights are uploaded in chunks). */
vkf_status graph_weights_write(graph_weights *w, int buf, VkDeviceSize offset, const void *data, size_t bytes);
/* Convenience: allocate, upload host floats (converted to dtype) and name them. */
vkf_status graph_weights_upload(graph_weights *w, const char *name, graph_dtype dtype, uint32_t rank,
                                const uint32_t *shape, const float *data);
const graph_weight_entry *graph_weights_find(const graph_weights *w, const char *name);

/* ---- memory plan --------------------------------------------------------- */

typedef struct graph_plan {
    uint64_t *offset;      /* per tensor: arena byte offset (TEMP), else 0 */
    uint64_t arena_bytes;  /* planned peak */
    uint64_t naive_bytes;  /* sum of every intermediate */
    uint32_t n_temps;
} graph_plan;

/* Liveness over the node order, then greedy placement by size (largest
 * first, lowest fitting offset): tensors whose lifetimes overlap never share
 * bytes. Views keep their parent alive. */
vkf_status graph_plan_memory(const graph *g, uint64_t align, graph_plan *plan);
void graph_plan_free(graph_plan *plan);

/* ---- compile and run ---------------------------------------------------------- */

typedef struct graph_exec graph_exec;

#define GRAPH_MAX_SLOTS 4

/* Activation memory shared by the variants of one model: one arena per
 * in-flight slot, sized for the largest variant, and the slots themselves:
 * slot i of any variant runs in arena i, so it never runs beside another
 * variant's slot i. Reference-counted (the variants that bind it). */
typedef struct graph_arenas graph_arenas;

vkf_status graph_arenas_create(vk_device *dev, uint32_t slots, uint64_t bytes, graph_arenas **out);
graph_arenas *graph_arenas_ref(graph_arenas *a);
void graph_arenas_unref(graph_arenas *a);
uint64_t graph_arenas_bytes(const graph_arenas *a);

/* Arena bytes a graph needs (its memory plan on this device). */
vkf_status graph_arena_need(vk_device *dev, const graph *g, uint64_t *bytes);

typedef struct graph_compile_opts {
    uint32_t slots;  /* inferences in flight at once (default 2, at most GRAPH_MAX_SLOTS) */
    bool profile;    /* per-node timestamps (also VKF_PROFILE=1); serialises dispatches */
    graph_arenas *shared; /* run in these arenas and slots (big enough) instead of its own */
    const graph_weights *state; /* what GRAPH_STATE tensors bind to, by name */
} graph_compile_opts;

typedef struct graph_exec_stats {
    uint64_t arena_bytes, naive_bytes, io_bytes;
    uint32_t dispatches, barriers, pipelines, nodes, slots;
} graph_exec_stats;

/* Takes ownership of g (also when it fails). */
vkf_status graph_compile(vk_device *dev, graph *g, const graph_weights *w, const graph_compile_opts *opts,
                         graph_exec **out);
void graph_exec_destroy(graph_exec *e);
void graph_exec_get_stats(const graph_exec *e, graph_exec_stats *s);
/* The shared arenas a compiled graph runs in (NULL: its own). */
graph_arenas *graph_exec_arenas(const graph_exec *e);
const graph *graph_exec_graph(const graph_exec *e);

/* One inference, step by step (for overlapping several): acquire a slot,
 * write its inputs and meta, submit, wait, read, release. */
vkf_status graph_exec_acquire(graph_exec *e, uint32_t *slot);
/* Writes an input from host data: float32 for float tensors (converted to the
 * storage type), int32 for GRAPH_I32. */
vkf_status graph_exec_write(graph_exec *e, uint32_t slot, int tensor, const void *data, size_t bytes);
vkf_status graph_exec_set_meta(graph_exec *e, uint32_t slot, uint32_t index, int32_t value);
vkf_status graph_exec_submit(graph_exec *e, uint32_t slot);
vkf_status graph_exec_wait(graph_exec *e, uint32_t slot);
/* Reads an output as float32 (or int32). */
vkf_status graph_exec_read(graph_exec *e, uint32_t slot, int tensor, void *data, size_t bytes);
void graph_exec_release(graph_exec *e, uint32_t slot);

/* GPU time of the slot's last run, from timestamps (a call the run path
 * itself never makes; benchmarks ask for it after waiting). */
vkf_status graph_exec_gpu_time(graph_exec *e, uint32_t slot, double *us);

/* Per-node profile averaged over the profiled runs so far, as a table. */
vkf_status graph_exec_profile_table(graph_exec *e, char **text);

/* ---- variants per shape -------------------------------------------------------- */

/* What tells one recorded variant of a model from another: which graph
 * (`kind`, the caller's: a forward pass, a vision tower, a prefill, a decode
 * step...), its batch size, its sequence bucket and one more size (`k`:
 * the candidates a generation graph returns). Compared whole. */
typedef struct graph_key {
    uint32_t kind, batch, seq, k;
    uint32_t tgt;  /* a second token count (an encoder-decoder's forward: the decoder's bucket) */
    uint32_t packed; /* texts packed into one token dimension of seq (batch 1): the count of text slots; 0 padded */
} graph_key;

bool graph_key_eq(const graph_key *a, const graph_key *b);

/* Builds the graph of one variant. */
typedef graph *(*graph_build_fn)(void *user, const graph_key *key);

typedef struct graph_cache_entry {
    graph_key key;
    graph_exec *exec;   /* NULL while a thread compiles it */
    uint32_t users;     /* callers holding it: never evicted while > 0 */
    uint64_t last_used;
} graph_cache_entry;

/* A bounded cache of compiled variants, least recently used evicted first. */
typedef struct graph_cache {
    vk_device *dev;
    const graph_weights *weights;
    graph_compile_opts opts;
    graph_build_fn build;
    void *user;
    graph_cache_entry *e;
    uint32_t n, max, cap;
    uint64_t clock;
    uint32_t compiles;  /* how many variants were recorded so far */
    graph_arenas *arenas; /* the model's one reservation (grows with the largest variant) */
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a variant finished compiling or was released */
} graph_cache;

void graph_cache_init(graph_cache *c, vk_device *dev, const graph_weights *w, const graph_compile_opts *opts,
                      uint32_t max_entries, graph_build_fn build, void *user);
void graph_cache_destroy(graph_cache *c);
/* The variant for a shape, compiled on first use; release it after the run.
 * Compiling happens outside the lock, so other threads' hits on compiled
 * variants never wait for it; a thread that wants a shape being compiled
 * waits for it. When every variant is in use, a new one is compiled past the
 * bound, and releasing brings the cache back under it. All variants share one
 * activation reservation (graph_arenas) sized for the largest; a larger new
 * variant replaces it, and the variants bound to the old one are dropped as
 * soon as nobody uses them. */
vkf_status graph_cache_get(graph_cache *c, const graph_key *key, graph_exec **e);
void graph_cache_release(graph_cache *c, graph_exec *e);

#endif
